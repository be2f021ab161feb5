//! Property tests of the config loader: whatever the text and the `--set` overrides, loading
//! returns a config or an error, never panics, and an error is one line that names the origin.

use proptest::prelude::*;
use rl_runner::TrainConfig;

/// A valid config to mutate (the shipped cart-pole config).
const BASE: &str = include_str!("../../../../configs/cartpole.toml");

/// Checks one load: no panic (the property), and errors are one line naming the origin.
fn load(text: &str, overrides: &[String]) {
    match TrainConfig::parse(text, "fuzz.toml", overrides) {
        Ok(cfg) => {
            // A config that loads also round-trips through its resolved TOML.
            let resolved = cfg.to_toml().expect("a loaded config serialises");
            TrainConfig::parse(&resolved, "resolved.toml", &[]).expect("resolved config loads");
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "multi-line error: {msg}");
            assert!(
                msg.contains("fuzz.toml") || msg.starts_with("--set"),
                "error does not name its origin: {msg}"
            );
        }
    }
}

/// Fragments that steer mutations towards meaningful TOML: keys, sections, values of every
/// type, and values at and past the edges of the valid ranges.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("[env]\n".to_string()),
        Just("[algorithm]\n".to_string()),
        Just("[policy]\n".to_string()),
        Just("[runner]\n".to_string()),
        Just("gamma = 1.5\n".to_string()),
        Just("gamma = 0.0\n".to_string()),
        Just("num_envs = 0\n".to_string()),
        Just("num_mini_batches = 7\n".to_string()),
        Just("learning_rate = -1e-3\n".to_string()),
        Just("learning_rate = nan\n".to_string()),
        Just("task = \"cartpole_discrete\"\n".to_string()),
        Just("task = 3\n".to_string()),
        Just("actor_hidden_dims = []\n".to_string()),
        Just("actor_hidden_dims = [0, -1]\n".to_string()),
        Just("activation = \"swish\"\n".to_string()),
        Just("noise_std_schedule = { type = \"linear\" }\n".to_string()),
        Just("class = \"sac\"\n".to_string()),
        Just("seed = -1\n".to_string()),
        Just("max_iterations = 18446744073709551616\n".to_string()),
        Just("\"\"\"".to_string()),
        Just("= = =\n".to_string()),
        "[a-z_.]{1,20} = [-0-9.e]{1,12}\n",
        "\\PC{0,30}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        load(&text, &[]);
    }

    #[test]
    fn mutated_configs_never_panic(
        cut in 0usize..BASE.len(),
        len in 0usize..80,
        insert in fragment(),
    ) {
        // Replace a slice of the valid config (on character boundaries) with a fragment.
        let start = (0..=cut).rev().find(|&i| BASE.is_char_boundary(i)).unwrap_or(0);
        let end = (start + len).min(BASE.len());
        let end = (end..=BASE.len()).find(|&i| BASE.is_char_boundary(i)).unwrap_or(BASE.len());
        let text = format!("{}{}{}", &BASE[..start], insert, &BASE[end..]);
        load(&text, &[]);
    }

    #[test]
    fn arbitrary_overrides_never_panic(
        key in prop_oneof![
            "[a-z_]{1,12}\\.[a-z_]{1,20}",
            Just("algorithm.gamma".to_string()),
            Just("env.num_envs".to_string()),
            Just("policy.actor_hidden_dims".to_string()),
            Just("policy.noise_std_schedule".to_string()),
            "\\PC{0,20}",
        ],
        value in prop_oneof![
            "[-0-9.e]{1,12}",
            Just("[64, 64]".to_string()),
            Just("{ type = \"linear\", final_std = 0.2, num_iterations = 10 }".to_string()),
            Just("\"cartpole\"".to_string()),
            "\\PC{0,20}",
        ],
        with_equals in any::<bool>(),
    ) {
        let item = if with_equals { format!("{key}={value}") } else { key };
        load(BASE, &[item]);
    }
}
