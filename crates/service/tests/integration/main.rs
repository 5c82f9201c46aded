//! Integration tests of `aki-service` on mocks of the store and provider ports.

mod service;
