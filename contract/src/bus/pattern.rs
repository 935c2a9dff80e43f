/// AMQP topic matching: words separated by `.`, `*` matches one word, `#` zero or more.
pub fn topic_matches(pattern: &str, topic: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let t: Vec<&str> = topic.split('.').collect();
    matches(&p, &t)
}

fn matches(p: &[&str], t: &[&str]) -> bool {
    match (p.first(), t.first()) {
        (None, None) => true,
        (Some(&"#"), _) => matches(&p[1..], t) || (!t.is_empty() && matches(p, &t[1..])),
        (Some(&"*"), Some(_)) => matches(&p[1..], &t[1..]),
        (Some(a), Some(b)) if a == b => matches(&p[1..], &t[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::topic_matches;

    #[test]
    fn amqp_topic_semantics() {
        assert!(topic_matches("image.tags.ready", "image.tags.ready"));
        assert!(topic_matches("image.*.ready", "image.tags.ready"));
        assert!(topic_matches("image.#", "image.tags.ready"));
        assert!(topic_matches("#", "storage.object.created"));
        assert!(!topic_matches("image.*", "image.tags.ready"));
        assert!(!topic_matches("storage.#", "image.tags.ready"));
    }
}
