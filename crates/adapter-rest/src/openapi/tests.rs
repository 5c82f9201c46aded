//! The document against the wire types: every schema's property names are the serde field names
//! of its type (read from serde itself, so a field added to a DTO must show up), every string
//! enum lists the values serde writes or reads, every `$ref` resolves, and the timing headers
//! documented are the ones sent.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aki_core::Timing;
use serde::de::{self, DeserializeOwned, Visitor};
use serde::{Deserializer, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::cohere::*;
use crate::native::*;
use crate::openai::*;
use crate::ops::*;
use crate::tei::*;

/// What serde reveals of a type it deserializes: its field names, or its variants' names.
#[derive(Debug)]
struct Revealed(Vec<&'static str>);

impl std::fmt::Display for Revealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::error::Error for Revealed {}

impl de::Error for Revealed {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Self(Vec::new())
    }
}

/// A deserializer that answers a struct or an enum with the names serde asks it for.
struct Reveal;

impl<'de> Deserializer<'de> for Reveal {
    type Error = Revealed;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Revealed> {
        Err(Revealed(Vec::new()))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Revealed> {
        Err(Revealed(fields.to_vec()))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Revealed> {
        Err(Revealed(variants.to_vec()))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map identifier ignored_any
    }
}

/// The names serde reads for `T`.
fn read<T: DeserializeOwned + ToSchema>() -> (String, BTreeSet<String>) {
    let names = T::deserialize(Reveal).err().map(|r| r.0).unwrap_or_default();
    (T::name().into_owned(), names.into_iter().map(str::to_string).collect())
}

/// The names serde writes for `samples` of `T` (keys of objects, or the strings of an enum).
fn written<T: Serialize + ToSchema>(samples: &[T]) -> (String, BTreeSet<String>) {
    let mut names = BTreeSet::new();
    for sample in samples {
        match serde_json::to_value(sample).expect("serializes") {
            Value::Object(fields) => names.extend(fields.keys().cloned()),
            Value::String(value) => {
                names.insert(value);
            }
            other => panic!("{}: {other} is neither an object nor a string", T::name()),
        }
    }
    (T::name().into_owned(), names)
}

/// Every object and string-enum schema's names as serde reads or writes them, from samples
/// with every optional field set.
fn wire_names() -> BTreeMap<String, BTreeSet<String>> {
    let models = || OpenAiModels::new(vec!["m".into()]);
    let tei_token = TeiToken { id: 1, text: "a".into(), special: false, start: Some(0), stop: Some(1) };
    let cohere = CohereRerankResponse {
        id: "id".into(),
        model: "m".into(),
        results: vec![CohereResult {
            index: 0,
            relevance_score: 0.5,
            document: Some(CohereDocument { text: "a".into() }),
        }],
        usage: CohereUsage { total_tokens: 1 },
    };
    let cohere_meta = || CohereMeta {
        api_version: CohereApiVersion { version: "2".into() },
        billed_units: CohereBilledUnits { input_tokens: 1 },
    };
    let cohere_embed = CohereEmbedResponse {
        id: "id".into(),
        response_type: "embeddings_by_type",
        embeddings: CohereVectors::Floats(vec![]),
        texts: vec![],
        meta: cohere_meta(),
    };
    let native_error = NativeError { error: NativeErrorDetail { kind: "validation", message: "m".into() } };
    let openai_error =
        OpenAiError { error: OpenAiErrorDetail { message: "m".into(), kind: "server_error", param: None, code: None } };
    let openai = OpenAiResponse {
        object: List::List,
        data: vec![OpenAiEmbedding {
            object: EmbeddingTag::Embedding,
            index: 0,
            embedding: OpenAiVector::Float(vec![]),
        }],
        model: "m".into(),
        usage: OpenAiUsage { prompt_tokens: 1, total_tokens: 1 },
    };
    let native = NativeResponse {
        model: "m".into(),
        dimension: 1,
        embeddings: vec![],
        embeddings_by_type: Some(crate::quantized::EmbeddingsByType::default()),
        usage: NativeUsage { tokens: 1 },
    };
    let info = InfoResponse {
        model_id: "m".into(),
        dimension: 1,
        max_input_tokens: 1,
        pooling: PoolingName::Mean,
        normalize: true,
        dtype: "f32".into(),
        device: "cpu".into(),
        architecture: "bert".into(),
        task: TaskName::Embed,
        engine: "e".into(),
        prompts: BTreeMap::new(),
        default_prompt_name: Some("query".into()),
        max_batch_size: 1,
        max_batch_tokens: 1,
        max_concurrent_batches: 1,
        max_forward_batch: 1,
        max_client_batch_size: 1,
        models: vec![],
        version: "v",
        served_model_name: "m".into(),
        model_sha: Some("s".into()),
        model_dtype: "float32".into(),
        model_type: TeiModelType::Embedding { pooling: "mean".into() },
        max_concurrent_requests: 1,
        max_input_length: 1,
        max_batch_requests: 1,
        auto_truncate: false,
        tokenization_workers: 1,
        sha: Some("s".into()),
        docker_label: Some("d".into()),
    };
    let labels = || TeiLabels { id2label: BTreeMap::new(), label2id: BTreeMap::new() };
    BTreeMap::from([
        read::<NativeRequest>(),
        read::<crate::native::LongInputsField>(),
        written(&[native]),
        written(&[NativeUsage { tokens: 1 }]),
        written(&[native_error]),
        written(&[NativeErrorDetail { kind: "validation", message: "m".into() }]),
        read::<OpenAiRequest>(),
        read::<EncodingFormat>(),
        written(&[openai]),
        written(&[OpenAiEmbedding {
            object: EmbeddingTag::Embedding,
            index: 0,
            embedding: OpenAiVector::Float(vec![]),
        }]),
        written(&[OpenAiUsage { prompt_tokens: 1, total_tokens: 1 }]),
        written(&[List::List]),
        written(&[EmbeddingTag::Embedding]),
        written(&[ModelTag::Model]),
        written(&[models()]),
        written(&models().data),
        written(&[openai_error]),
        written(&[OpenAiErrorDetail { message: "m".into(), kind: "server_error", param: None, code: None }]),
        read::<TeiEmbedRequest>(),
        read::<TeiRerankRequest>(),
        read::<TeiEmbedPlainRequest>(),
        written(&[TeiSparseValue { index: 1, value: 0.5 }]),
        read::<TeiTokenizeRequest>(),
        read::<TeiSimilarityRequest>(),
        read::<TeiSimilarityInputs>(),
        read::<TeiSimilarityParameters>(),
        read::<TeiPredictRequest>(),
        written(&[TeiPrediction { score: 0.5, label: "a".into() }]),
        read::<TeiDecodeRequest>(),
        written(&[labels()]),
        read::<TeiDirection>(),
        read::<crate::family::PriorityField>(),
        written(&[TeiRank { index: 0, text: Some("a".into()), score: 0.5 }]),
        written(&[tei_token]),
        written(&[TeiError { error: "m".into(), error_type: TeiErrorType::Empty }]),
        written(&[
            TeiErrorType::Validation,
            TeiErrorType::Empty,
            TeiErrorType::Overloaded,
            TeiErrorType::Unhealthy,
            TeiErrorType::Backend,
        ]),
        read::<CohereRerankRequest>(),
        read::<CohereEmbedRequest>(),
        read::<CohereInputType>(),
        read::<crate::quantized::EmbeddingType>(),
        read::<CohereTruncate>(),
        written(&[crate::quantized::EmbeddingsByType {
            float: Some(vec![]),
            int8: Some(vec![]),
            uint8: Some(vec![]),
            binary: Some(vec![]),
            ubinary: Some(vec![]),
            base64: Some(vec![]),
        }]),
        written(&[cohere_embed]),
        written(&[CohereApiVersion { version: "2".into() }]),
        written(&[CohereBilledUnits { input_tokens: 1 }]),
        written(&[cohere_meta()]),
        written(&[cohere]),
        written(&[CohereResult {
            index: 0,
            relevance_score: 0.5,
            document: Some(CohereDocument { text: "a".into() }),
        }]),
        written(&[CohereDocument { text: "a".into() }]),
        written(&[CohereUsage { total_tokens: 1 }]),
        written(&[info]),
        written(&[PoolingName::Mean, PoolingName::Cls, PoolingName::Max, PoolingName::LastToken, PoolingName::Splade]),
        written(&[TaskName::Embed, TaskName::Rerank, TaskName::Classify]),
        written(&[Health { status: Alive::Ok }]),
        written(&[Alive::Ok]),
        written(&[Ready { status: Readiness::Ready }]),
        written(&[Readiness::Ready, Readiness::Unavailable]),
    ])
}

/// Schemas that are a choice of shapes (serde's untagged enums), not an object or a string enum.
const CHOICES: [&str; 9] = [
    "CohereVectors",
    "OpenAiInput",
    "OpenAiVector",
    "TeiInputs",
    "RerankDocument",
    "TeiPredictInputs",
    "TeiPredictResponse",
    "TeiIds",
    "TeiModelType",
];

fn document() -> Value {
    serde_json::to_value(super::document()).expect("the document serializes")
}

/// A schema's names: its properties, or its enum's values.
fn documented_names(schema: &Value) -> BTreeSet<String> {
    if let Some(properties) = schema["properties"].as_object() {
        properties.keys().cloned().collect()
    } else {
        schema["enum"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect()
    }
}

#[test]
fn every_schema_names_the_fields_serde_reads_or_writes() {
    let document = document();
    let schemas = document["components"]["schemas"].as_object().expect("schemas");
    let wire = wire_names();
    for (name, schema) in schemas {
        if CHOICES.contains(&name.as_str()) {
            assert!(schema["oneOf"].is_array(), "{name} is a choice: {schema}");
            continue;
        }
        let Some(names) = wire.get(name) else {
            panic!("{name} is in the document but not checked here: add a sample to wire_names()");
        };
        assert!(!names.is_empty(), "{name}: serde revealed no names");
        assert_eq!(&documented_names(schema), names, "{name}: the document and serde disagree");
    }
    for name in wire.keys() {
        assert!(schemas.contains_key(name), "{name} is a wire type but not in the document");
    }
}

/// Every `$ref` in `value`.
fn refs(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                found.push(target.clone());
            }
            map.values().for_each(|v| refs(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
        _ => {}
    }
}

#[test]
fn every_reference_resolves_and_every_schema_is_used() {
    let document = document();
    let mut found = Vec::new();
    refs(&document, &mut found);
    let schemas = document["components"]["schemas"].as_object().expect("schemas");
    for target in &found {
        let name = target.strip_prefix("#/components/schemas/").expect("a schema reference");
        assert!(schemas.contains_key(name), "{target} does not resolve");
    }
    for name in schemas.keys() {
        assert!(found.iter().any(|t| t.ends_with(&format!("/{name}"))), "{name} is never used");
    }
}

#[test]
fn the_timing_headers_documented_are_the_ones_sent() {
    let sent: BTreeSet<String> = crate::family::timing(0, aki_core::Lane::Bulk, Timing::default(), Duration::ZERO)
        .iter()
        .map(|(name, _)| name.to_string())
        .collect();
    let document = document();
    let mut timed = 0;
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("operations") {
            if let Some(headers) = operation["responses"]["200"]["headers"].as_object() {
                let documented: BTreeSet<String> = headers.keys().cloned().collect();
                assert_eq!(documented, sent, "{method} {path}");
                timed += 1;
            }
        }
    }
    assert_eq!(timed, 15, "the embedding, similarity, predict and rerank routes document their timing headers");
}

#[test]
fn the_document_says_who_needs_the_key() {
    let document = document();
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document["security"], json!([{"bearer": []}]));
    assert_eq!(document["components"]["securitySchemes"]["bearer"], json!({"type": "http", "scheme": "bearer"}));
    for open in ["/health", "/ping", "/ready", "/metrics", "/openapi.json"] {
        assert_eq!(document["paths"][open]["get"]["security"], json!([{}]), "{open} needs no key");
    }
    assert!(document["paths"]["/info"]["get"].get("security").is_none(), "/info needs the key");
}
