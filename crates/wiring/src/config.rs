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
mod tests {
    use super::*;
    use figment::Jail;

    fn load(cli: &CliArgs) -> Result<AppConfig, String> {
        AppConfig::load(AppConfig::default(), cli).map_err(|e| format!("{e:#}"))
    }

    #[test]
    fn defaults_then_file_then_env_then_flags() {
        Jail::expect_with(|jail| {
            let defaults = load(&CliArgs::default())?;
            assert_eq!((defaults.host.as_str(), defaults.port), ("127.0.0.1", 8080));
            assert_eq!(defaults.model, DEFAULT_MODEL);

            jail.create_file("aki.toml", "port = 9000\nmodel = \"from-file\"\n[batching]\nmax_batch_size = 8\n")?;
            let from_file = load(&CliArgs::default())?;
            assert_eq!((from_file.port, from_file.model.as_str()), (9000, "from-file"));
            assert_eq!(from_file.batching.max_batch_size, 8);

            jail.set_env("AKI_PORT", "9100");
            jail.set_env("AKI_BATCHING__MAX_BATCH_SIZE", "16");
            jail.set_env("AKI_MODELS_DIR", "/not/a/config/key");
            let from_env = load(&CliArgs::default())?;
            assert_eq!((from_env.port, from_env.model.as_str()), (9100, "from-file"));
            assert_eq!(from_env.batching.max_batch_size, 16);

            let cli = CliArgs { port: Some(9200), model: Some("from-flag".into()), ..CliArgs::default() };
            let from_flags = load(&cli)?;
            assert_eq!((from_flags.port, from_flags.model.as_str()), (9200, "from-flag"));
            assert_eq!(from_flags.batching.max_batch_size, 16, "flags leave other keys alone");
            Ok(())
        });
    }

    #[test]
    fn an_explicit_config_file_replaces_aki_toml() {
        Jail::expect_with(|jail| {
            jail.create_file("aki.toml", "port = 9000\n")?;
            jail.create_file("other.toml", "port = 9300\n")?;
            let cli = CliArgs { config: Some("other.toml".into()), ..CliArgs::default() };
            assert_eq!(load(&cli)?.port, 9300);
            let missing = CliArgs { config: Some("nope.toml".into()), ..CliArgs::default() };
            assert!(load(&missing).expect_err("missing file").contains("nope.toml"));
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        Jail::expect_with(|jail| {
            jail.create_file("aki.toml", "[batching]\nmax_batch_sise = 8\n")?;
            let err = load(&CliArgs::default()).expect_err("unknown key");
            assert!(err.contains("max_batch_sise"), "{err}");

            jail.create_file("aki.toml", "port = \"eighty\"\n")?;
            let err = load(&CliArgs::default()).expect_err("bad value");
            assert!(err.contains("port"), "{err}");

            jail.create_file("aki.toml", "[batching]\nmax_batch_size = 0\n")?;
            let err = load(&CliArgs::default()).expect_err("zero batch");
            assert!(err.contains("batching.max_batch_size"), "{err}");

            jail.create_file("aki.toml", "[limits]\nmax_inputs = 5000\n")?;
            let err = load(&CliArgs::default()).expect_err("more inputs than the queue holds");
            assert!(err.contains("limits.max_inputs") && err.contains("batching.queue_capacity"), "{err}");

            jail.create_file("aki.toml", "[limits]\nmax_input_chars = 2000000\n")?;
            let err = load(&CliArgs::default()).expect_err("an input longer than a request");
            assert!(err.contains("limits.max_input_chars") && err.contains("limits.max_request_chars"), "{err}");

            jail.create_file("aki.toml", "port = 9000\nmetrics_port = 9000\n")?;
            let err = load(&CliArgs::default()).expect_err("one port for both");
            assert!(err.contains("metrics_port") && err.contains("`port`"), "{err}");

            jail.create_file("aki.toml", "")?;
            jail.set_env("AKI_PROT", "1");
            let err = load(&CliArgs::default()).expect_err("unknown env key");
            assert!(err.contains("prot"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_cuda_device_takes_the_gpu_defaults_where_nothing_was_set() {
        Jail::expect_with(|jail| {
            let cpu = load(&CliArgs::default())?;
            assert!(cpu.gpu_defaults.is_empty());
            assert_eq!((cpu.batching.max_batch_size, cpu.backend.dtype.clone()), (32, None));

            let cuda = CliArgs { device: Some("cuda".into()), ..CliArgs::default() };
            let gpu = load(&cuda)?;
            assert_eq!(gpu.gpu_defaults.len(), 7);
            assert_eq!(gpu.backend.dtype.as_deref(), Some("f16"));
            assert_eq!((gpu.batching.max_batch_size, gpu.batching.max_batch_tokens), (128, 16_384));
            assert_eq!((gpu.backend.max_forward_batch, gpu.batching.max_concurrent_batches), (128, 2));

            // Anything set by file, variable or flag wins.
            jail.create_file("aki.toml", "[batching]\nmax_batch_size = 64\n")?;
            jail.set_env("AKI_BACKEND__DTYPE", "f32");
            let mixed = load(&CliArgs { device: Some("cuda:1".into()), ..CliArgs::default() })?;
            assert_eq!((mixed.batching.max_batch_size, mixed.backend.dtype.as_deref()), (64, Some("f32")));
            assert_eq!(mixed.batching.max_batch_tokens, 16_384, "the keys left alone still take GPU values");
            assert!(!mixed.gpu_defaults.contains(&"batching.max_batch_size"));
            assert!(!mixed.gpu_defaults.contains(&"backend.dtype"));
            Ok(())
        });
    }

    #[test]
    fn named_keys_come_from_the_file_and_the_keys_file_and_print_hidden() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "keys.toml",
                "[[api_keys]]\nname = \"index\"\nkey = \"k-index\"\nweight = 2\ntokens_per_minute = 100000\n",
            )?;
            jail.create_file(
                "aki.toml",
                "api_keys_file = \"keys.toml\"\n\n[[api_keys]]\nname = \"search\"\nkey = \"k-search\"\n",
            )?;
            let config = load(&CliArgs::default())?;
            let tenants = config.tenants().map_err(|e| e.to_string())?;
            assert_eq!(
                tenants.identify(Some("k-index")).map(|t| (t.name.to_string(), t.weight)),
                Ok(("index".into(), 2))
            );
            assert_eq!(tenants.identify(Some("k-search")).map(|t| t.name.to_string()), Ok("search".into()));
            assert!(tenants.identify(None).is_err(), "keys configured: a key is needed");
            let toml = config.to_toml().map_err(|e| e.to_string())?;
            assert!(!toml.contains("k-search") && toml.contains("key = \"***\""), "{toml}");
            // A name given twice (file and configuration) stops start-up.
            jail.create_file("keys.toml", "[[api_keys]]\nname = \"search\"\nkey = \"other\"\n")?;
            let err = load(&CliArgs::default()).expect_err("twice");
            assert!(err.contains("named twice"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn the_configuration_prints_as_toml_with_the_key_hidden() {
        Jail::expect_with(|jail| {
            jail.create_file("aki.toml", "api_key = \"hunter2\"\n")?;
            let config = load(&CliArgs { device: Some("cuda".into()), ..CliArgs::default() })?;
            let toml = config.to_toml().map_err(|e| e.to_string())?;
            assert!(!toml.contains("hunter2") && toml.contains("api_key = \"***\""), "{toml}");
            let read: toml::Value = toml::from_str(&toml).map_err(|e| e.to_string())?;
            assert_eq!(read["batching"]["max_batch_size"].as_integer(), Some(128));
            assert_eq!(read["backend"]["dtype"].as_str(), Some("f16"));
            assert_eq!(read["backend"]["device"].as_str(), Some("cuda"));
            Ok(())
        });
    }

    #[test]
    fn an_empty_api_key_stops_start_up() {
        Jail::expect_with(|jail| {
            jail.create_file("aki.toml", "api_key = \"\"\n")?;
            let err = load(&CliArgs::default()).expect_err("empty key");
            assert!(err.contains("api_key"), "{err}");
            jail.create_file("aki.toml", "api_key = \"k3y\"\n")?;
            assert!(load(&CliArgs::default())?.api_key.is_some());
            Ok(())
        });
    }

    #[test]
    fn the_api_key_is_redacted_in_debug_output() {
        let config = AppConfig { api_key: Some(ApiKey("hunter2".into())), ..AppConfig::default() };
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2") && shown.contains("***"));
    }
}
