//! Choosing a prior's shape on held-out codes: every candidate fitted to the
//! training codes, scored on the held-out ones, the best kept.

use super::*;

impl LatentPrior {
    /// Fits every candidate shape to the codes of `train`'s images and keeps the
    /// one under which the codes of `held_out`'s images have the highest mean
    /// log-density (ties: the earlier candidate). A candidate of K components is
    /// fitted only when some condition has K · m training codes, m =
    /// [`Covariance::min_codes_per_component`]; within it, a condition of n codes
    /// gets at most max(1, n / m) components (the others weigh 0). EM as in
    /// [`LatentPrior::from_codes_shaped`]; deterministic (k-means++ draws from a
    /// fixed seed). An error when either split
    /// has no images or no candidate scores a finite log-density.
    pub fn select(
        cvae: &dyn Cvae,
        spec: &ConditionSpec,
        train: &Split,
        held_out: &Split,
        epoch: usize,
        candidates: &[PriorShape],
        device: Device,
    ) -> Result<(LatentPrior, PriorSelection)> {
        let start = Instant::now();
        let (train_codes, train_condition) = encode_codes(cvae, spec, train, device);
        let (held_codes, held_condition) = encode_codes(cvae, spec, held_out, device);
        let encode_seconds = start.elapsed().as_secs_f64();
        let (prior, mut selection) = LatentPrior::select_from_codes(
            &train_codes,
            &train_condition,
            &held_codes,
            &held_condition,
            num_conditions(spec),
            candidates,
            epoch,
        )?;
        selection.encode_seconds = encode_seconds;
        selection.seconds += encode_seconds;
        Ok((prior, selection))
    }

    /// [`LatentPrior::select`] on given codes: train: [n, latent] with
    /// `train_condition` (as [`LatentPrior::from_codes`]), held: [m, latent] with
    /// `held_condition`.
    pub fn select_from_codes(
        train: &Tensor,
        train_condition: &[i64],
        held: &Tensor,
        held_condition: &[i64],
        conditions: usize,
        candidates: &[PriorShape],
        epoch: usize,
    ) -> Result<(LatentPrior, PriorSelection)> {
        let start = Instant::now();
        let (n, m) = (train_condition.len(), held_condition.len());
        if n == 0 || m == 0 {
            return Err(Error::InvalidInput(format!(
                "choosing a latent prior needs training and held-out codes ({n} and {m} here)"
            )));
        }
        if candidates.is_empty() {
            return Err(Error::InvalidInput("choosing a latent prior needs candidates".into()));
        }
        let latent = train.size()[1];
        if train.size() != [n as i64, latent] || held.size() != [m as i64, latent] {
            return Err(Error::InvalidInput(format!(
                "codes {:?} and {:?} for {n} and {m} conditions",
                train.size(),
                held.size()
            )));
        }
        check_conditions(train_condition, conditions)?;
        check_conditions(held_condition, conditions)?;
        let mut per_condition = vec![0usize; conditions];
        for &c in train_condition {
            per_condition[c as usize] += 1;
        }
        let largest = per_condition.iter().copied().max().unwrap_or(0);
        let (mut fits, mut skipped): (Vec<CandidateFit>, Vec<PriorShape>) = (Vec::new(), Vec::new());
        let mut best: Option<(usize, LatentPrior)> = None;
        for &shape in candidates {
            let shape = PriorShape::new(shape.components.max(1), shape.covariance);
            let per_component = shape.covariance.min_codes_per_component(latent as usize);
            if shape.components > 1 && shape.components * per_component > largest {
                skipped.push(shape);
                continue;
            }
            let fit_start = Instant::now();
            let prior = fit_codes(train, train_condition, conditions, shape, FitOptions::shaped(per_component), epoch);
            let fit_seconds = fit_start.elapsed().as_secs_f64();
            let fit = CandidateFit {
                components: shape.components,
                covariance: shape.covariance,
                train_log_density: prior.mean_log_density_at(train, train_condition),
                held_out_log_density: prior.mean_log_density_at(held, held_condition),
                parameters: prior.parameter_count(),
                fit_seconds,
            };
            let score = fit.held_out_log_density;
            let better = score.is_finite() && best.as_ref().is_none_or(|(i, _)| score > fits[*i].held_out_log_density);
            fits.push(fit);
            if better {
                best = Some((fits.len() - 1, prior));
            }
        }
        let Some((chosen, mut prior)) = best else {
            return Err(Error::InvalidInput(
                "no candidate latent prior gives the held-out codes a finite log-density".into(),
            ));
        };
        prior.selected = true;
        let selection = PriorSelection {
            epoch,
            latent: latent as usize,
            conditions,
            train_codes: n,
            held_out_codes: m,
            cap_rule: format!(
                "K components are tried only when some condition has K · m training codes; a condition of n codes \
                 gets max(1, n / m) of them at most (the others weigh 0); m = max(latent + 1, \
                 {MIN_CODES_PER_COMPONENT}) = {} for full covariances, {MIN_CODES_PER_COMPONENT} for diagonal and tied ones",
                Covariance::Full.min_codes_per_component(latent as usize)
            ),
            candidates: fits,
            skipped,
            chosen,
            encode_seconds: 0.0,
            seconds: start.elapsed().as_secs_f64(),
        };
        Ok((prior, selection))
    }
}

/// One candidate of a selection: its shape, how well it fits the training codes
/// and the held-out codes (mean log-density, nats per code), its size and its fitting time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CandidateFit {
    /// Components per condition asked for (a condition with few codes gets fewer).
    pub components: usize,
    pub covariance: Covariance,
    /// Mean log p(z | c) of the training codes it was fitted to.
    #[serde(with = "finite_or_null")]
    pub train_log_density: f64,
    /// Mean log p(z | c) of the held-out codes: the selection's score.
    #[serde(with = "finite_or_null")]
    pub held_out_log_density: f64,
    /// [`LatentPrior::parameter_count`].
    pub parameters: usize,
    /// Seconds of the EM fit (scoring not included).
    pub fit_seconds: f64,
}

impl CandidateFit {
    pub fn shape(&self) -> PriorShape {
        PriorShape::new(self.components, self.covariance)
    }

    /// Train-code minus held-out-code mean log-density: the prior's own overfit.
    pub fn overfit_gap(&self) -> f64 {
        self.train_log_density - self.held_out_log_density
    }
}

/// How a run's prior was chosen ([`LatentPrior::select`]): every candidate
/// fitted, with the one kept. Saved in the run folder as [`PRIOR_SELECTION_FILE`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PriorSelection {
    /// The checkpoint epoch whose encoder produced the codes.
    pub epoch: usize,
    pub latent: usize,
    pub conditions: usize,
    pub train_codes: usize,
    pub held_out_codes: usize,
    /// The rule capping the components, in words.
    pub cap_rule: String,
    /// The candidates fitted, in the order tried.
    pub candidates: Vec<CandidateFit>,
    /// Candidates not fitted: no condition had the codes their components need.
    pub skipped: Vec<PriorShape>,
    /// Index in `candidates` of the prior kept.
    pub chosen: usize,
    /// Seconds encoding the training and held-out images (0 for given codes).
    pub encode_seconds: f64,
    /// Seconds of the whole selection: encoding, every fit and every score.
    pub seconds: f64,
}

impl PriorSelection {
    pub fn chosen(&self) -> &CandidateFit {
        &self.candidates[self.chosen]
    }

    /// Writes the table as JSON.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::files::write_atomic(path, &serde_json::to_vec_pretty(self).expect("a selection serializes"))
    }

    /// Reads a table written by [`PriorSelection::save`].
    pub fn load(path: &Path) -> Result<PriorSelection> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::Checkpoint { path: path.to_path_buf(), message: format!("unreadable: {e}") })
    }
}

/// A log-density in JSON: a number, or null when it is not finite (JSON has no
/// NaN or infinity); null reads back as NaN.
mod finite_or_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &f64, s: S) -> std::result::Result<S::Ok, S::Error> {
        if value.is_finite() {
            s.serialize_f64(*value)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}
