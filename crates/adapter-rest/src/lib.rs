//! The REST adapter of aki-embed (binary `aki-rest`): the only crate that knows HTTP and JSON
//! wire formats. Filled by the REST issue; until then it holds no routes.
