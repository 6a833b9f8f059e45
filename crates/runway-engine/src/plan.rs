//! The rolling-update planner: pure arithmetic, no I/O.
//!
//! Given how many replicas of the old and the new release serve, it says what to do next. The
//! executor (`converge`) and `runway plan` both use it, so the plan printed is the plan run.
//! Invariants while replacing: never more than `target + max_surge` replicas running, never fewer
//! than `target - max_unavailable` serving (except when nothing served before: a first deploy).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollingState {
    pub target: u32,
    pub max_surge: u32,
    pub max_unavailable: u32,
    /// Serving replicas of anything but the target release.
    pub old: u32,
    /// Serving replicas of the target release.
    pub new: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Start this many replicas of the target release, wait for them to be healthy, route them.
    StartNew(u32),
    /// Take this many old replicas out of rotation, drain and stop them.
    RetireOld(u32),
    /// Take surplus replicas of the target release out (a scale-down).
    RetireNew(u32),
    Done,
    /// No step can make progress without breaking an invariant (max_surge = max_unavailable = 0).
    Stuck,
}

pub fn next_step(s: RollingState) -> Step {
    if s.old == 0 && s.new == s.target {
        return Step::Done;
    }
    if s.old == 0 && s.new > s.target {
        return Step::RetireNew(s.new - s.target);
    }
    let serving = s.old + s.new;
    let floor = s.target.saturating_sub(s.max_unavailable);
    if s.old > 0 && serving > floor {
        // Retiring first when allowed keeps the surge budget free for new replicas.
        return Step::RetireOld(s.old.min(serving - floor));
    }
    let room = (s.target + s.max_surge).saturating_sub(serving);
    let missing = s.target.saturating_sub(s.new);
    match room.min(missing) {
        0 => Step::Stuck,
        k => Step::StartNew(k),
    }
}

/// The whole sequence of steps from a state, assuming every step succeeds.
pub fn simulate(mut s: RollingState) -> Vec<Step> {
    let mut steps = Vec::new();
    loop {
        let step = next_step(s);
        steps.push(step);
        match step {
            Step::StartNew(k) => s.new += k,
            Step::RetireOld(k) => s.old -= k,
            Step::RetireNew(k) => s.new -= k,
            Step::Done | Step::Stuck => return steps,
        }
        if steps.len() > 10_000 {
            steps.push(Step::Stuck);
            return steps;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Step::*;

    fn state(target: u32, surge: u32, unavailable: u32, old: u32, new: u32) -> RollingState {
        RollingState {
            target,
            max_surge: surge,
            max_unavailable: unavailable,
            old,
            new,
        }
    }

    /// Checks the invariants along a simulated rollout.
    fn check(mut s: RollingState) -> Vec<Step> {
        let steps = simulate(s);
        let had_old = s.old > 0;
        for step in &steps {
            match *step {
                StartNew(k) => {
                    s.new += k;
                    assert!(
                        s.old + s.new <= s.target + s.max_surge,
                        "surge exceeded at {s:?}"
                    );
                }
                RetireOld(k) => {
                    s.old -= k;
                    if had_old {
                        assert!(
                            s.old + s.new >= s.target.saturating_sub(s.max_unavailable),
                            "availability floor broken at {s:?}"
                        );
                    }
                }
                RetireNew(k) => s.new -= k,
                Done => assert_eq!((s.old, s.new), (0, s.target)),
                Stuck => panic!("stuck at {s:?}"),
            }
        }
        steps
    }

    #[test]
    fn surge_one_unavailable_zero_replaces_one_at_a_time() {
        assert_eq!(
            check(state(3, 1, 0, 3, 0)),
            vec![
                StartNew(1),
                RetireOld(1),
                StartNew(1),
                RetireOld(1),
                StartNew(1),
                RetireOld(1),
                Done
            ]
        );
    }

    #[test]
    fn first_deploy_starts_everything_at_once() {
        assert_eq!(check(state(3, 1, 0, 0, 0)), vec![StartNew(3), Done]);
    }

    #[test]
    fn unavailable_allows_retiring_first() {
        let steps = check(state(3, 0, 1, 3, 0));
        assert_eq!(steps[0], RetireOld(1));
        assert_eq!(*steps.last().unwrap(), Done);
    }

    #[test]
    fn bigger_budgets_take_bigger_steps() {
        assert_eq!(check(state(4, 2, 0, 4, 0))[0], StartNew(2));
        assert_eq!(
            check(state(4, 4, 0, 4, 0)),
            vec![StartNew(4), RetireOld(4), Done]
        );
    }

    #[test]
    fn scaling_up_and_down_within_one_release() {
        assert_eq!(check(state(5, 1, 0, 0, 3)), vec![StartNew(2), Done]);
        assert_eq!(check(state(1, 1, 0, 0, 3)), vec![RetireNew(2), Done]);
    }

    #[test]
    fn shrinking_while_replacing() {
        check(state(2, 1, 0, 4, 0));
        check(state(4, 1, 0, 2, 0));
        check(state(3, 1, 0, 2, 1));
    }

    #[test]
    fn zero_budgets_are_stuck_not_looping() {
        assert_eq!(next_step(state(3, 0, 0, 3, 0)), Stuck);
    }

    #[test]
    fn every_small_configuration_terminates_within_its_invariants() {
        for target in 1..6 {
            for surge in 0..3 {
                for unavailable in 0..3 {
                    if surge == 0 && unavailable == 0 {
                        continue;
                    }
                    for old in 0..6 {
                        for new in 0..=target {
                            check(state(target, surge, unavailable, old, new));
                        }
                    }
                }
            }
        }
    }
}
