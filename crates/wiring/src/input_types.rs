//! `input_type_prompts`: per model, the prompt each of Cohere's input types takes, overriding
//! the names the Cohere routes look for by default.

use std::collections::BTreeMap;

use aki_cache::ModelStoreConfig;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// The input types a mapping may name: Cohere's, less `image` (never served).
pub const INPUT_TYPES: [&str; 4] = ["search_query", "search_document", "classification", "clustering"];

/// Model (as requests name it; the default model under `model`'s value) -> input type -> the
/// name of that model's prompt; an empty name means the text as it is, without any prompt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InputTypePrompts(pub BTreeMap<String, BTreeMap<String, String>>);

/// What a mapping says of one input type of one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappedPrompt<'a> {
    /// Not mapped: the route's own choice applies.
    Unmapped,
    /// The model's prompt of this name.
    Named(&'a str),
    /// No prompt at all, not even the model's default one.
    Bare,
}

impl InputTypePrompts {
    /// What `model`'s mapping says of `input_type`.
    pub fn prompt(&self, model: &str, input_type: &str) -> MappedPrompt<'_> {
        match self.0.get(model).and_then(|types| types.get(input_type)) {
            None => MappedPrompt::Unmapped,
            Some(name) if name.is_empty() => MappedPrompt::Bare,
            Some(name) => MappedPrompt::Named(name),
        }
    }

    /// Every model named must be one requests may name, and every input type one of
    /// [`INPUT_TYPES`].
    ///
    /// # Errors
    /// Naming the key at fault.
    pub(crate) fn validate(&self, store: &ModelStoreConfig) -> Result<()> {
        for (model, types) in &self.0 {
            if !store.allows(model) {
                bail!("`input_type_prompts.\"{model}\"`: not a model this server serves (`model` or `models.models`)");
            }
            if let Some(unknown) = types.keys().find(|t| !INPUT_TYPES.contains(&t.as_str())) {
                bail!("`input_type_prompts.\"{model}\".{unknown}`: input types are {}", INPUT_TYPES.join(", "));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(model: &str, pairs: &[(&str, &str)]) -> InputTypePrompts {
        let types = pairs.iter().map(|(t, p)| ((*t).to_string(), (*p).to_string())).collect();
        InputTypePrompts(BTreeMap::from([(model.to_string(), types)]))
    }

    #[test]
    fn a_mapped_type_names_its_prompt_an_empty_name_none_and_others_are_left_to_the_route() {
        let prompts = mapping("e5", &[("search_query", "query"), ("clustering", "")]);
        assert_eq!(prompts.prompt("e5", "search_query"), MappedPrompt::Named("query"));
        assert_eq!(prompts.prompt("e5", "clustering"), MappedPrompt::Bare);
        assert_eq!(prompts.prompt("e5", "search_document"), MappedPrompt::Unmapped);
        assert_eq!(prompts.prompt("other", "search_query"), MappedPrompt::Unmapped);
    }

    #[test]
    fn only_served_models_and_known_input_types_may_be_mapped() {
        let store = ModelStoreConfig { default_model: "e5".into(), models: vec!["bge".into()], ..Default::default() };
        assert!(mapping("e5", &[("search_query", "query")]).validate(&store).is_ok());
        assert!(mapping("bge", &[("classification", "")]).validate(&store).is_ok());
        let unserved = mapping("gte", &[("search_query", "query")]).validate(&store).expect_err("refused");
        assert!(unserved.to_string().contains("`input_type_prompts.\"gte\"`"), "{unserved}");
        let unknown = mapping("e5", &[("image", "query")]).validate(&store).expect_err("refused");
        assert!(unknown.to_string().contains("`input_type_prompts.\"e5\".image`"), "{unknown}");
    }
}
