//! "Did you mean …?" for misspelled keys and values.
//!
//! A typo in a config key is the most common mistake and the cheapest to fix if the
//! error names the intended key, so unknown names are compared with the valid ones by
//! edit distance (ignoring case and `-` vs `_`).

/// The candidate closest to `word`, if it is close enough to be a plausible typo, or
/// else one that `word` extends or abbreviates (`healthcheck` → `health`).
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = normalize(word);
    let typo = candidates
        .iter()
        .map(|&c| (distance(&word, &normalize(c)), c))
        .filter(|&(d, c)| d <= max_typos(c))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c);
    typo.or_else(|| {
        candidates.iter().copied().find(|c| {
            let c = normalize(c);
            let (short, long) = if c.len() < word.len() {
                (&c, &word)
            } else {
                (&word, &c)
            };
            short.len() >= 3 && long.starts_with(short)
        })
    })
}

/// How many edits still look like a typo of `candidate` rather than another word.
fn max_typos(candidate: &str) -> usize {
    (candidate.chars().count() / 3).clamp(1, 3)
}

fn normalize(s: &str) -> Vec<char> {
    s.chars()
        .map(|c| {
            if c == '-' {
                '_'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// Edit distance counting insertions, deletions, substitutions and swaps of two
/// adjacent characters (optimal string alignment).
fn distance(a: &[char], b: &[char]) -> usize {
    let width = b.len() + 1;
    let mut d = vec![0; (a.len() + 1) * width];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            d[i * width + j] = if i == 0 || j == 0 {
                i + j
            } else {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut best = (d[(i - 1) * width + j] + 1)
                    .min(d[i * width + j - 1] + 1)
                    .min(d[(i - 1) * width + j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    best = best.min(d[(i - 2) * width + j - 2] + 1);
                }
                best
            };
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &[&str] = &[
        "command",
        "replicas",
        "env",
        "dir",
        "stop_timeout",
        "drain_timeout",
    ];

    #[test]
    fn finds_plausible_typos() {
        assert_eq!(closest("replica", RUN), Some("replicas"));
        assert_eq!(closest("comand", RUN), Some("command"));
        assert_eq!(closest("stop-timeout", RUN), Some("stop_timeout"));
        assert_eq!(closest("ENV", RUN), Some("env"));
        assert_eq!(closest("rolign", &["rolling"]), Some("rolling"));
        assert_eq!(
            closest("healthcheck", &["service", "health"]),
            Some("health")
        );
        assert_eq!(closest("directory", RUN), Some("dir"));
    }

    #[test]
    fn ignores_unrelated_words() {
        assert_eq!(closest("image", RUN), None);
        assert_eq!(closest("x", RUN), None);
        assert_eq!(closest("", RUN), None);
    }

    #[test]
    fn counts_a_swap_as_one_edit() {
        assert_eq!(distance(&normalize("ab"), &normalize("ba")), 1);
        assert_eq!(distance(&normalize("kitten"), &normalize("sitting")), 3);
    }
}
