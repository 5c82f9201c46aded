//! Integration tests of `aki-grpc`: every method over a real local connection with tonic's
//! generated client, status mapping, bad input, auth, health, and a long stream.

mod calls;
mod support;
