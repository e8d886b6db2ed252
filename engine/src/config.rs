//! Collection configuration: what a user declares when creating a collection
//! (modalities, attributes, index parameters). It is validated once and then
//! persisted in the manifest, so every later open uses exactly the same settings.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Most modalities a collection may declare.
const MAX_MODALITIES: usize = 16;
/// Embedding dimensions a modality may declare.
const DIM_RANGE: RangeInclusive<usize> = 1..=65_536;
/// Values `hnsw.m` may take.
const M_RANGE: RangeInclusive<usize> = 4..=128;
/// Largest `hnsw.ef_construction` and `hnsw.ef_search`.
const MAX_CONFIG_EF: usize = 4096;
/// Longest modality name, in characters.
const MAX_MODALITY_NAME: usize = 32;
/// Longest attribute name, in characters.
const MAX_ATTRIBUTE_NAME: usize = 64;

/// The similarity measure. Only cosine is offered: AstroCLIP embeddings are
/// compared by cosine, and vectors are L2-normalised on write so cosine is a dot product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Distance {
    /// Cosine similarity (scores in [-1, 1], higher is closer).
    #[default]
    Cosine,
}

/// How vector components are stored in the memory-mapped vector files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Precision {
    /// 32-bit IEEE floats (4 bytes per component).
    #[default]
    F32,
}

/// One embedding space, e.g. `image` or `spectrum`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModalityConfig {
    /// Name used in the API (`[a-z0-9_]`, 1–32 characters).
    pub name: String,
    /// Number of components of each embedding (AstroCLIP: 1024).
    pub dim: usize,
}

/// The type of a catalog attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttributeKind {
    /// A real number (e.g. redshift, mag_r, log stellar mass).
    Float,
    /// An integer (e.g. a survey release number, a vote count).
    Int,
    /// A string label compared by equality (e.g. morph_class, survey).
    Category,
}

impl AttributeKind {
    /// Lower-case name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            AttributeKind::Float => "float",
            AttributeKind::Int => "int",
            AttributeKind::Category => "category",
        }
    }
}

/// A declared attribute: a name, a type and an optional unit for display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeDef {
    /// Name (`[a-z0-9_]`, 1–64 characters).
    pub name: String,
    /// Value type.
    pub kind: AttributeKind,
    /// Unit for display (e.g. "mag", "dex", "Gyr"); empty when dimensionless.
    #[serde(default)]
    pub unit: String,
}

impl AttributeDef {
    /// A float attribute with a unit.
    pub fn float(name: &str, unit: &str) -> Self {
        AttributeDef {
            name: name.into(),
            kind: AttributeKind::Float,
            unit: unit.into(),
        }
    }
    /// An integer attribute with a unit.
    pub fn int(name: &str, unit: &str) -> Self {
        AttributeDef {
            name: name.into(),
            kind: AttributeKind::Int,
            unit: unit.into(),
        }
    }
    /// A category (string label) attribute.
    pub fn category(name: &str) -> Self {
        AttributeDef {
            name: name.into(),
            kind: AttributeKind::Category,
            unit: String::new(),
        }
    }
}

/// HNSW graph parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HnswConfig {
    /// Maximum neighbours per node per layer (`M`; 4–128).
    pub m: usize,
    /// Candidate list size while building (`ef_construction`; ≥ m).
    pub ef_construction: usize,
    /// Default candidate list size while searching (`ef`; ≥ 1), used when a query gives none.
    pub ef_search: usize,
}

impl Default for HnswConfig {
    fn default() -> Self {
        HnswConfig {
            m: 16,
            ef_construction: 200,
            ef_search: 200,
        }
    }
}

/// Everything declared when a collection is created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionConfig {
    /// Embedding spaces (at least one).
    pub modalities: Vec<ModalityConfig>,
    /// Catalog attributes objects may carry.
    pub attributes: Vec<AttributeDef>,
    /// Similarity measure.
    pub distance: Distance,
    /// Storage precision of the vector files.
    pub precision: Precision,
    /// HNSW parameters (shared by every modality).
    pub hnsw: HnswConfig,
    /// Name of the model that produced the embeddings (informational, e.g. "astrovec-small").
    #[serde(default)]
    pub model: String,
}

impl CollectionConfig {
    /// The AstroCLIP layout: `image` and `spectrum`, both 1024-d, no attributes yet.
    pub fn astroclip() -> Self {
        CollectionConfig {
            modalities: vec![
                ModalityConfig {
                    name: "image".into(),
                    dim: 1024,
                },
                ModalityConfig {
                    name: "spectrum".into(),
                    dim: 1024,
                },
            ],
            attributes: Vec::new(),
            distance: Distance::Cosine,
            precision: Precision::F32,
            hnsw: HnswConfig::default(),
            model: String::new(),
        }
    }

    /// Adds an attribute (builder style).
    pub fn with_attribute(mut self, def: AttributeDef) -> Self {
        self.attributes.push(def);
        self
    }

    /// Checks names, dimensions and parameters.
    pub fn validate(&self) -> Result<()> {
        if self.modalities.is_empty() {
            return Err(Error::InvalidConfig(
                "at least one modality is required".into(),
            ));
        }
        if self.modalities.len() > MAX_MODALITIES {
            return Err(Error::InvalidConfig(format!(
                "at most {MAX_MODALITIES} modalities are supported"
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for m in &self.modalities {
            check_name(&m.name, MAX_MODALITY_NAME, "modality")?;
            if !seen.insert(m.name.as_str()) {
                return Err(Error::InvalidConfig(format!(
                    "duplicate modality `{}`",
                    m.name
                )));
            }
            if !DIM_RANGE.contains(&m.dim) {
                return Err(Error::InvalidConfig(format!(
                    "modality `{}`: dimension {} is outside {DIM_RANGE:?}",
                    m.name, m.dim
                )));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for a in &self.attributes {
            check_name(&a.name, MAX_ATTRIBUTE_NAME, "attribute")?;
            if matches!(
                a.name.as_str(),
                "id" | "ra" | "dec" | "cone" | "and" | "or" | "not" | "in"
            ) {
                return Err(Error::InvalidConfig(format!(
                    "attribute name `{}` is reserved",
                    a.name
                )));
            }
            if !seen.insert(a.name.as_str()) {
                return Err(Error::InvalidConfig(format!(
                    "duplicate attribute `{}`",
                    a.name
                )));
            }
        }
        let h = &self.hnsw;
        if !M_RANGE.contains(&h.m) {
            return Err(Error::InvalidConfig(format!(
                "hnsw.m = {} is outside {M_RANGE:?}",
                h.m
            )));
        }
        if h.ef_construction < h.m || h.ef_construction > MAX_CONFIG_EF {
            return Err(Error::InvalidConfig(format!(
                "hnsw.ef_construction = {} must be in m..={MAX_CONFIG_EF}",
                h.ef_construction
            )));
        }
        if h.ef_search == 0 || h.ef_search > MAX_CONFIG_EF {
            return Err(Error::InvalidConfig(format!(
                "hnsw.ef_search = {} is outside 1..={MAX_CONFIG_EF}",
                h.ef_search
            )));
        }
        Ok(())
    }

    /// Index of a modality by name.
    pub fn modality_index(&self, name: &str) -> Result<usize> {
        self.modalities
            .iter()
            .position(|m| m.name == name)
            .ok_or_else(|| Error::UnknownModality {
                name: name.into(),
                known: self
                    .modalities
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Index of an attribute by name.
    pub fn attribute_index(&self, name: &str) -> Result<usize> {
        self.attributes
            .iter()
            .position(|a| a.name == name)
            .ok_or_else(|| Error::UnknownAttribute {
                name: name.into(),
                known: self
                    .attributes
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

fn check_name(name: &str, max: usize, what: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidConfig(format!(
            "{what} name `{name}` must be 1–{max} characters of [a-z0-9_], not starting with a digit"
        )))
    }
}
