//! Methods with every receiver, associated functions, methods in trait
//! impls and trait default methods keep their signatures and compile
//! without a warning.
#![deny(warnings)]
#![warn(clippy::pedantic)]

use std::sync::Arc;

use circuit_runtime::{circuit_breaker, CircuitOpenError};

#[derive(Debug)]
pub struct Unavailable;

impl From<CircuitOpenError> for Unavailable {
    fn from(_: CircuitOpenError) -> Self {
        Unavailable
    }
}

#[derive(Clone, Debug, Default)]
pub struct Client {
    calls: u32,
}

impl Client {
    /// An associated function.
    #[circuit_breaker(name = "pass.methods.connect")]
    pub fn connect() -> Result<Client, Unavailable> {
        Ok(Client::default())
    }

    #[circuit_breaker(name = "pass.methods.by_ref", fallback = Self::cached)]
    fn by_ref(&self, id: u32) -> Result<u32, Unavailable> {
        Ok(self.calls + id)
    }

    #[allow(clippy::unnecessary_wraps)]
    fn cached(&self, id: u32) -> Result<u32, Unavailable> {
        Ok(self.calls * id)
    }

    #[circuit_breaker(name = "pass.methods.by_mut", fallback = Self::reset, fallback_on = "any_error")]
    fn by_mut(&mut self, step: u32) -> Result<u32, Unavailable> {
        self.calls += step;
        Ok(self.calls)
    }

    #[allow(clippy::unnecessary_wraps)]
    fn reset(&mut self, step: u32) -> Result<u32, Unavailable> {
        self.calls = step;
        Ok(step)
    }

    #[circuit_breaker(name = "pass.methods.by_value", fallback = Self::consumed)]
    fn by_value(self) -> Result<u32, Unavailable> {
        Ok(self.calls)
    }

    #[allow(clippy::unnecessary_wraps, clippy::needless_pass_by_value)]
    fn consumed(self) -> Result<u32, Unavailable> {
        Ok(self.calls + 100)
    }

    #[circuit_breaker(name = "pass.methods.arc", fallback = Self::shared_fallback, fallback_on = "any_error")]
    fn shared(self: Arc<Self>) -> Result<u32, Unavailable> {
        Ok(self.calls)
    }

    #[allow(clippy::unnecessary_wraps, clippy::needless_pass_by_value)]
    fn shared_fallback(self: Arc<Self>) -> Result<u32, Unavailable> {
        Ok(self.calls)
    }

    /// A method that returns a borrow of `self`.
    #[circuit_breaker(name = "pass.methods.borrow")]
    fn borrow(&self) -> Result<&u32, Unavailable> {
        Ok(&self.calls)
    }
}

pub trait Store {
    /// # Errors
    ///
    /// When the store is down.
    fn load(&self, key: &str) -> Result<String, Unavailable>;
}

impl Store for Client {
    #[circuit_breaker(name = "pass.methods.trait_impl")]
    fn load(&self, key: &str) -> Result<String, Unavailable> {
        Ok(format!("{key}={}", self.calls))
    }
}

pub trait Cache {
    /// A default method without a `name`: each implementing type gets its
    /// own breaker.
    ///
    /// # Errors
    ///
    /// When the cache is down.
    #[circuit_breaker(failure_threshold = 1)]
    fn get(&self, key: &str) -> Result<String, Unavailable> {
        Ok(key.to_owned())
    }
}

impl Cache for Client {}

pub fn main() {
    let mut client = Client::connect().unwrap();
    assert_eq!(client.by_ref(1).unwrap(), 1);
    assert_eq!(client.by_mut(2).unwrap(), 2);
    assert_eq!(*client.borrow().unwrap(), 2);
    assert_eq!(client.load("k").unwrap(), "k=2");
    assert_eq!(client.get("k").unwrap(), "k");
    assert_eq!(Arc::new(client.clone()).shared().unwrap(), 2);
    assert_eq!(client.by_value().unwrap(), 2);
}
