//! Breaker names, kept once per distinct name for the life of the program.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, OnceLock};

use crate::sync::lock_std;

/// A breaker's name, interned: a `&'static Name` is one pointer, so a
/// rejection that carries it stays small enough to come back in few
/// registers, and costs no reference count. Names are few and long-lived
/// (registry breakers live forever anyway), so the memory is bounded by the
/// distinct names a program uses.
#[derive(PartialEq, Eq)]
pub(crate) struct Name(&'static str);

impl Name {
    pub(crate) fn as_str(&self) -> &'static str {
        self.0
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// The one `Name` of `name`, made on its first use.
pub(crate) fn intern(name: String) -> &'static Name {
    static NAMES: OnceLock<Mutex<HashMap<&'static str, &'static Name>>> = OnceLock::new();
    let mut names = lock_std(NAMES.get_or_init(Default::default));
    if let Some(interned) = names.get(name.as_str()) {
        return interned;
    }
    let text: &'static str = Box::leak(name.into_boxed_str());
    let interned: &'static Name = Box::leak(Box::new(Name(text)));
    names.insert(text, interned);
    interned
}
