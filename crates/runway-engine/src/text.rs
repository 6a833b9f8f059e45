//! Small pieces of English shared by the CLI's and the engine's messages.

/// "1 replica", "3 replicas".
pub fn plural(n: impl Into<u64>, noun: &str) -> String {
    match n.into() {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_is_singular_and_everything_else_plural() {
        assert_eq!(super::plural(1u32, "replica"), "1 replica");
        assert_eq!(super::plural(0u32, "replica"), "0 replicas");
        assert_eq!(super::plural(3u32, "replica"), "3 replicas");
    }
}
