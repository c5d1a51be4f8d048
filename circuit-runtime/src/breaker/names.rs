//! Breaker names, kept once per distinct name for the life of the program.

use crate::sync::lock_std;

/// The `'static` copy of a breaker name, made once per distinct name for
/// the life of the program. Rejections carry the name, and a reference
/// count on it would cost every rejected call two locked instructions on a
/// cache line all rejecting threads share. Names are few and long-lived
/// (registry breakers live forever anyway), so the memory is bounded by the
/// distinct names a program uses.
pub(super) fn intern(name: String) -> &'static str {
    static NAMES: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<&'static str>>> =
        std::sync::OnceLock::new();
    let mut names = lock_std(NAMES.get_or_init(Default::default));
    if let Some(interned) = names.get(name.as_str()) {
        return interned;
    }
    let interned: &'static str = Box::leak(name.into_boxed_str());
    names.insert(interned);
    interned
}
