//! Container names, as Docker's name registrar keeps them: a create
//! reserves its name before its disk work and commits it with the record,
//! so two creates cannot both take one name while neither holds the
//! engine's table across that work.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// Who holds each name: a container, or a create still under way.
#[derive(Debug, Default)]
pub(crate) struct Names {
    holders: BTreeMap<String, String>,
}

impl Names {
    /// Takes `name` for container `id`; a name held by another is in use.
    pub(crate) fn reserve(&mut self, name: &str, id: &str) -> Result<()> {
        match self.holders.get(name) {
            Some(holder) if holder != id => Err(Error::NameInUse {
                name: name.to_owned(),
                id: holder.clone(),
            }),
            _ => {
                self.holders.insert(name.to_owned(), id.to_owned());
                Ok(())
            }
        }
    }

    /// Gives `name` back, if `id` holds it.
    pub(crate) fn release(&mut self, name: &str, id: &str) {
        if self.holders.get(name).is_some_and(|holder| holder == id) {
            self.holders.remove(name);
        }
    }

    pub(crate) fn is_free(&self, name: &str) -> bool {
        !self.holders.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reserved_name_is_taken_until_its_holder_releases_it() {
        let mut names = Names::default();
        names.reserve("web", "a").unwrap();
        let taken = names.reserve("web", "b").unwrap_err().to_string();
        assert!(
            taken.contains("\"/web\" is already in use by container \"a\""),
            "{taken}"
        );
        // Only the holder gives it back.
        names.release("web", "b");
        assert!(!names.is_free("web"));
        names.release("web", "a");
        assert!(names.is_free("web"));
        names.reserve("web", "b").unwrap();
    }
}
