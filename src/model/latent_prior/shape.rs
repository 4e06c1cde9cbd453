//! The shape of a latent prior: components per condition and the covariance kind.

use super::*;

/// The shape of the components' covariances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Covariance {
    /// Each component has its own full covariance: d(d+1)/2 parameters.
    #[default]
    Full,
    /// Each component has its own variance per latent dimension (axis-aligned): d parameters.
    Diagonal,
    /// One full covariance shared by all components of a condition: d(d+1)/2 per condition.
    Tied,
}

impl Covariance {
    pub const ALL: [Covariance; 3] = [Covariance::Full, Covariance::Diagonal, Covariance::Tied];

    /// The number the prior file stores (a file without one is full).
    pub(super) fn code(self) -> i64 {
        match self {
            Covariance::Full => 0,
            Covariance::Diagonal => 1,
            Covariance::Tied => 2,
        }
    }

    pub(super) fn from_code(code: i64) -> Option<Covariance> {
        Covariance::ALL.into_iter().find(|c| c.code() == code)
    }

    /// Free parameters of one condition's mixture of `components` Gaussians over
    /// `latent` dimensions: the means (components · latent), the covariances
    /// (full: components · latent(latent+1)/2; diagonal: components · latent;
    /// tied: latent(latent+1)/2) and the weights (components − 1: they sum to 1).
    pub fn parameters(self, components: usize, latent: usize) -> usize {
        if components == 0 {
            return 0;
        }
        let triangle = latent * (latent + 1) / 2;
        let covariances = match self {
            Covariance::Full => components * triangle,
            Covariance::Diagonal => components * latent,
            Covariance::Tied => triangle,
        };
        components * latent + covariances + components - 1
    }

    /// Training codes each component needs at least in a selection
    /// ([`LatentPrior::select`]): a full covariance is estimated from the
    /// component's own codes and has full rank (without the jitter) only from
    /// latent + 1 of them on; a diagonal one (a variance per dimension) and a
    /// tied one (pooled over the condition's components) need
    /// [`MIN_CODES_PER_COMPONENT`] for a mean and variances to stand on.
    pub fn min_codes_per_component(self, latent: usize) -> usize {
        match self {
            Covariance::Full => (latent + 1).max(MIN_CODES_PER_COMPONENT),
            Covariance::Diagonal | Covariance::Tied => MIN_CODES_PER_COMPONENT,
        }
    }
}

impl std::fmt::Display for Covariance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Covariance::Full => "full",
            Covariance::Diagonal => "diagonal",
            Covariance::Tied => "tied",
        })
    }
}

/// Components per condition and the shape of their covariances.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PriorShape {
    pub components: usize,
    pub covariance: Covariance,
}

impl PriorShape {
    pub const fn new(components: usize, covariance: Covariance) -> PriorShape {
        PriorShape { components, covariance }
    }

    /// The candidates a run's prior is chosen from: [`SELECTION_COMPONENTS`] ×
    /// [`Covariance::ALL`], by components then covariance, without tied with one
    /// component (the same Gaussian as full with one). 17 shapes.
    pub fn selection_candidates() -> Vec<PriorShape> {
        SELECTION_COMPONENTS
            .iter()
            .flat_map(|&k| Covariance::ALL.into_iter().map(move |c| PriorShape::new(k, c)))
            .filter(|s| !(s.components == 1 && s.covariance == Covariance::Tied))
            .collect()
    }
}
