//! `AppConfig`: every setting of a server, layered with figment.

use aki_backend_candle::CandleConfig;
use aki_batching::BatchConfig;
use aki_cache::{ModelStoreConfig, ResultCacheConfig};
use aki_core::paths::DEFAULT_MODEL;
use aki_service::{ApiKey, LanePolicy, Limits, TenantKey, Tenants};
use anyhow::{Context, Result, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::cli::CliArgs;
use crate::gpu;
use crate::input_types::InputTypePrompts;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// Every setting of a server. Keys are documented in `docs/configuration.md`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppConfig {
    /// Address to listen on.
    pub host: String,
    /// Port to listen on.
    pub port: u16,
    /// The default model: a hub id or a local directory.
    pub model: String,
    /// When set, API routes require `Authorization: Bearer <api_key>` (the tenant `default`).
    pub api_key: Option<ApiKey>,
    /// Named keys, one tenant each, with a weight in the lanes' fair share and an optional
    /// token rate (`[[api_keys]]`); API routes then require one of them (or `api_key`).
    pub api_keys: Vec<TenantKey>,
    /// A TOML file of more `[[api_keys]]` entries, read at start-up (keeps keys out of the
    /// main configuration).
    pub api_keys_file: Option<std::path::PathBuf>,
    /// Log format.
    pub log_format: LogFormat,
    /// Origins allowed by CORS; empty (the default) sends no CORS headers.
    pub cors_allow_origins: Vec<String>,
    /// Port of the Prometheus `/metrics` endpoint for servers that do not speak HTTP
    /// themselves (`aki-grpc`); 0 turns it off.
    pub metrics_port: u16,
    /// Address of that endpoint: loopback unless set, so metrics are not exposed with the API.
    pub metrics_host: String,
    /// Seconds between returns of freed heap pages to the system (`memory.rs`); 0: never.
    pub memory_trim_secs: u64,
    /// Request limits.
    pub limits: Limits,
    /// Which lane a request waits in, and each lane's timeout.
    pub lanes: LanePolicy,
    /// Inference settings of the Candle backend.
    pub backend: CandleConfig,
    /// Dynamic batching.
    pub batching: BatchConfig,
    /// Which models may be served and how many stay loaded.
    pub models: ModelStoreConfig,
    /// The result cache.
    pub result_cache: ResultCacheConfig,
    /// Per model, the prompt each of Cohere's input types takes.
    pub input_type_prompts: InputTypePrompts,
    /// Keys that took the GPU defaults (see [`AppConfig::load`]), for the start-up log.
    #[serde(skip)]
    pub gpu_defaults: Vec<&'static str>,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            model: DEFAULT_MODEL.into(),
            api_key: None,
            api_keys: Vec::new(),
            api_keys_file: None,
            log_format: LogFormat::Human,
            cors_allow_origins: Vec::new(),
            metrics_port: 0,
            metrics_host: "127.0.0.1".into(),
            memory_trim_secs: 10,
            limits: Limits::default(),
            lanes: LanePolicy::default(),
            backend: CandleConfig::default(),
            batching: BatchConfig::default(),
            models: ModelStoreConfig::default(),
            result_cache: ResultCacheConfig::default(),
            input_type_prompts: InputTypePrompts::default(),
            gpu_defaults: Vec::new(),
        }
    }
}

/// `AKI_*` variables that are not configuration keys (read elsewhere).
const NOT_CONFIG: [&str; 4] = ["MODELS_DIR", "LOAD_CORPUS", "LOAD_RATE", "LOAD_CONNECTIONS"];

impl AppConfig {
    /// Builds the configuration, each layer overriding the one before:
    /// 1. `defaults` (the compiled defaults of the calling server);
    /// 2. the TOML file `cli.config`, else `aki.toml` in the working directory when present;
    /// 3. `AKI_*` environment variables, `__` separating nested keys
    ///    (`AKI_BATCHING__MAX_BATCH_SIZE`);
    /// 4. command-line flags.
    ///
    /// When the device is a CUDA GPU (`cuda`, `cuda:N`, or `auto` on a build that has CUDA),
    /// the keys of [`GPU_DEFAULTS`](gpu::GPU_DEFAULTS) that no file, variable or flag set take their GPU values
    /// instead of the CPU-sized compiled defaults; [`AppConfig::gpu_defaults`] lists them.
    ///
    /// # Errors
    /// A missing `--config` file, an unknown key, or a bad value, naming the key.
    pub fn load(defaults: Self, cli: &CliArgs) -> Result<Self> {
        let mut user = Figment::new();
        match &cli.config {
            Some(path) if !path.is_file() => bail!("configuration file {} does not exist", path.display()),
            Some(path) => user = user.merge(Toml::file_exact(path)),
            None if std::path::Path::new("aki.toml").is_file() => user = user.merge(Toml::file_exact("aki.toml")),
            None => {}
        }
        user = user.merge(Env::prefixed("AKI_").split("__").ignore(&NOT_CONFIG)).merge(Serialized::defaults(cli));
        if let Some(device) = &cli.device {
            user = user.merge(Serialized::default("backend.device", device));
        }
        let figment = Figment::from(Serialized::defaults(defaults)).merge(user.clone());
        let mut config: Self = figment.extract().map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        if config.backend.is_cuda() {
            gpu::apply_defaults(&mut config, |key| user.contains(key));
        }
        config.validate().context("invalid configuration")?;
        Ok(config)
    }

    /// The configuration as TOML, every key, the API key hidden (`--print-config`).
    ///
    /// # Errors
    /// Never in practice: every value has a TOML form.
    pub fn to_toml(&self) -> Result<String> {
        let mut shown = self.clone();
        if shown.api_key.is_some() {
            shown.api_key = Some(ApiKey("***".into()));
        }
        for entry in &mut shown.api_keys {
            entry.key = ApiKey("***".into());
        }
        toml::to_string_pretty(&shown).context("writing the configuration as TOML")
    }

    /// The tenants of `api_key`, `api_keys` and `api_keys_file`.
    ///
    /// # Errors
    /// An unreadable or malformed keys file, or a bad tenant list (see [`Tenants::new`]).
    pub fn tenants(&self) -> Result<Tenants> {
        /// The shape of `api_keys_file`.
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct KeysFile {
            api_keys: Vec<TenantKey>,
        }
        let mut keys = self.api_keys.clone();
        if let Some(path) = &self.api_keys_file {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("reading `api_keys_file` {}", path.display()))?;
            let file: KeysFile =
                toml::from_str(&text).with_context(|| format!("reading `api_keys_file` {}", path.display()))?;
            keys.extend(file.api_keys);
        }
        Tenants::new(self.api_key.clone(), &keys).map_err(|e| anyhow::anyhow!("`api_keys`: {e}"))
    }

    fn validate(&self) -> Result<()> {
        if self.model.trim().is_empty() {
            bail!("`model` must name a model");
        }
        if self.host.trim().is_empty() {
            bail!("`host` must not be empty");
        }
        if self.api_key.as_ref().is_some_and(ApiKey::is_blank) {
            bail!("`api_key` is empty: set a key, or remove the setting to serve without one");
        }
        self.tenants()?;
        let backend = [("backend.max_forward_batch", self.backend.max_forward_batch as u64)];
        for (key, value) in self.limits.nonzero_keys().into_iter().chain(backend) {
            if value == 0 {
                bail!("`{key}` must be at least 1");
            }
        }
        self.backend.dtype().map_err(|e| anyhow::anyhow!("`backend.dtype`: {e}"))?;
        self.batching.validate().map_err(|e| anyhow::anyhow!("`{e}`"))?;
        self.input_type_prompts.validate(&self.store_config())?;
        self.cross_check()
    }

    /// Settings that are fine alone but contradict each other, named together.
    fn cross_check(&self) -> Result<()> {
        let (limits, batching) = (&self.limits, &self.batching);
        if limits.max_inputs > batching.queue_capacity {
            bail!(
                "`limits.max_inputs` ({}) is more than `batching.queue_capacity` ({}): a request that large could \
                 never be queued and would always get 429; lower the first or raise the second",
                limits.max_inputs,
                batching.queue_capacity
            );
        }
        if limits.max_input_chars > limits.max_request_chars {
            bail!(
                "`limits.max_input_chars` ({}) is more than `limits.max_request_chars` ({}): one input of the \
                 allowed length would be refused; lower the first or raise the second",
                limits.max_input_chars,
                limits.max_request_chars
            );
        }
        if self.metrics_port != 0 && self.metrics_port == self.port {
            bail!("`metrics_port` and `port` are both {}: give the metrics endpoint a port of its own", self.port);
        }
        Ok(())
    }

    /// The model store settings with the default model filled in.
    pub fn store_config(&self) -> ModelStoreConfig {
        ModelStoreConfig { default_model: self.model.clone(), ..self.models.clone() }
    }
}

#[cfg(test)]
// `figment::Jail` closures must return figment's own (large) error type.
#[allow(clippy::result_large_err)]
mod tests;
