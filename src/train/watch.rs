//! Watching a GAN for a saturated discriminator: D(x) and D(G(z)) stuck at
//! 0 or 1 for many consecutive steps means one network no longer learns from
//! the other. (Non-finite losses stop training instead: see `check_finite`.)

/// How the discriminator's outputs are stuck.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Saturation {
    /// D(x) ≈ 1 and D(G(z)) ≈ 0: D wins outright, G gets almost no gradient.
    DiscriminatorWins,
    /// D(x) ≈ 0 and D(G(z)) ≈ 1: D has it backwards (G wins outright).
    DiscriminatorInverted,
    /// D outputs ≈ 0 for everything.
    AllFake,
    /// D outputs ≈ 1 for everything.
    AllReal,
}

impl Saturation {
    fn of(d_real: f64, d_fake: f64, margin: f64) -> Option<Saturation> {
        let (hi, lo) = (1.0 - margin, margin);
        match (d_real, d_fake) {
            (r, f) if r > hi && f < lo => Some(Saturation::DiscriminatorWins),
            (r, f) if r < lo && f > hi => Some(Saturation::DiscriminatorInverted),
            (r, f) if r < lo && f < lo => Some(Saturation::AllFake),
            (r, f) if r > hi && f > hi => Some(Saturation::AllReal),
            _ => None,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Saturation::DiscriminatorWins => {
                "the discriminator wins outright (D(x) ≈ 1, D(G(z)) ≈ 0); the generator gets almost no gradient"
            }
            Saturation::DiscriminatorInverted => "the discriminator has it backwards (D(x) ≈ 0, D(G(z)) ≈ 1)",
            Saturation::AllFake => "the discriminator calls every image fake (D ≈ 0)",
            Saturation::AllReal => "the discriminator calls every image real (D ≈ 1)",
        }
    }
}

/// Counts consecutive saturated steps and says so once a streak reaches `window`.
#[derive(Clone, Debug)]
pub struct DiscriminatorWatch {
    /// Consecutive saturated steps before a warning.
    pub window: usize,
    /// Distance from 0 or 1 that counts as saturated.
    pub margin: f64,
    streak: usize,
    current: Option<Saturation>,
    warned: Option<Saturation>,
}

impl DiscriminatorWatch {
    pub fn new(window: usize) -> Self {
        DiscriminatorWatch { window: window.max(1), margin: 0.01, streak: 0, current: None, warned: None }
    }

    /// Feeds one step's batch means of D(x) and D(G(z)) (probabilities).
    /// Returns a saturation the first time a streak of it reaches `window`
    /// (once per kind until the discriminator recovers).
    pub fn observe(&mut self, d_real: f64, d_fake: f64) -> Option<Saturation> {
        let now = Saturation::of(d_real, d_fake, self.margin);
        if now.is_some() && now == self.current {
            self.streak += 1;
        } else {
            self.current = now;
            self.streak = usize::from(now.is_some());
            if now.is_none() {
                self.warned = None;
            }
        }
        match self.current {
            Some(s) if self.streak >= self.window && self.warned != Some(s) => {
                self.warned = Some(s);
                Some(s)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_once_after_a_full_streak() {
        let mut w = DiscriminatorWatch::new(5);
        for _ in 0..4 {
            assert_eq!(w.observe(0.999, 0.001), None);
        }
        assert_eq!(w.observe(0.999, 0.001), Some(Saturation::DiscriminatorWins));
        for _ in 0..20 {
            assert_eq!(w.observe(0.999, 0.001), None, "warned once per streak");
        }
    }

    #[test]
    fn a_healthy_step_resets_the_streak() {
        let mut w = DiscriminatorWatch::new(3);
        assert_eq!(w.observe(0.999, 0.001), None);
        assert_eq!(w.observe(0.999, 0.001), None);
        assert_eq!(w.observe(0.7, 0.3), None);
        assert_eq!(w.observe(0.999, 0.001), None);
        assert_eq!(w.observe(0.999, 0.001), None);
        assert_eq!(w.observe(0.999, 0.001), Some(Saturation::DiscriminatorWins));
    }

    #[test]
    fn every_kind_of_saturation_is_named() {
        for (r, f, want) in [
            (0.001, 0.999, Saturation::DiscriminatorInverted),
            (0.001, 0.001, Saturation::AllFake),
            (0.999, 0.999, Saturation::AllReal),
        ] {
            let mut w = DiscriminatorWatch::new(2);
            assert_eq!(w.observe(r, f), None);
            assert_eq!(w.observe(r, f), Some(want));
        }
        let mut w = DiscriminatorWatch::new(1);
        assert_eq!(w.observe(0.5, 0.5), None);
    }
}
