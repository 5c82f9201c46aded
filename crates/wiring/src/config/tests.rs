//! Tests of `AppConfig::load`: layering, unknown keys, bad values and the cross-checks.

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
        assert_eq!(tenants.identify(Some("k-index")).map(|t| (t.name.to_string(), t.weight)), Ok(("index".into(), 2)));
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
