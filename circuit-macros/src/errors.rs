//! Every mistake found in one attribute, combined so the user sees them all
//! at once instead of fixing them one compile at a time.

/// The errors found so far.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(first) => first.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub fn into_error(self) -> Option<syn::Error> {
        self.0
    }
}
