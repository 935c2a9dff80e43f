//! Merging the layers: TOML values, with environment variables nested by `__`.

pub(super) fn merge(base: &mut toml::Value, overlay: toml::Value) {
    match (base, overlay) {
        (toml::Value::Table(base), toml::Value::Table(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// The value at `keys` in `value`, if any.
pub(super) fn lookup<'a>(value: &'a toml::Value, keys: &[String]) -> Option<&'a toml::Value> {
    keys.iter().try_fold(value, |v, key| v.get(key))
}

pub(super) fn nest(keys: &[String], value: toml::Value) -> toml::Value {
    keys.iter().rev().fold(value, |inner, key| {
        let mut table = toml::map::Map::new();
        table.insert(key.clone(), inner);
        toml::Value::Table(table)
    })
}

/// An environment value for a non-string setting, as TOML if it parses as a scalar or array
/// (`5`, `true`, `["a"]`), else as a plain string (which then fails with the key's name).
pub(super) fn parse_scalar(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}
