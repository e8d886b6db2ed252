//! The column → attribute mapping: which catalog columns hold the id, position,
//! image, spectrum and precomputed embeddings, which become attributes (with what
//! name, type and unit), and what happens to columns nobody named — kept as
//! attributes or ignored, explicitly, and listed in the report either way.
//!
//! Written as TOML (or JSON with the same keys):
//!
//! ```toml
//! id = "targetid"
//! ra = "ra"
//! dec = "dec"
//! image = "image"          # planar [3,H,W] g,r,z nanomaggies, or nested [H][W][3]
//! image_layout = "auto"    # "chw", "hwc" or "auto" (nested lists: from the shape; flat: chw)
//! spectrum = "spectrum"    # 7781 fluxes on the DESI grid
//! unknown_columns = "keep" # or "ignore"
//! ignore = ["parent_index"]
//!
//! [attributes]             # column = attribute name, or a table
//! Z = { name = "redshift", kind = "float", unit = "" }
//!
//! [embeddings]             # modality = column of precomputed embeddings
//! image = "image_embedding"
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use astrovec_engine::AttributeKind;
use serde::{Deserialize, Serialize};

use super::error::{IngestError, Result};

/// What to do with columns the mapping does not name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownColumns {
    /// Scalar columns become attributes under their (lower-cased) name.
    #[default]
    Keep,
    /// Only the named columns are read.
    Ignore,
}

/// Layout of a flat image column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageLayout {
    /// Nested lists: taken from the shape; flat lists: planar (`chw`).
    #[default]
    Auto,
    /// Planar `[3, H, W]` (the mock survey).
    Chw,
    /// Channel-last `[H, W, 3]` (the AstroCLIP Parquet mirror).
    Hwc,
}

/// One attribute declared in the mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttributeSpec {
    /// Just the attribute name; the type follows the column's type.
    Name(String),
    /// Name, and optionally type and unit.
    Full {
        /// Attribute name (`[a-z0-9_]`).
        name: String,
        /// `float`, `int` or `category`; the column's type when absent.
        #[serde(default)]
        kind: Option<KindName>,
        /// Unit for display.
        #[serde(default)]
        unit: String,
    },
}

/// An attribute type as written in the mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KindName {
    /// A real number.
    Float,
    /// An integer.
    Int,
    /// A string label.
    Category,
}

impl From<KindName> for AttributeKind {
    fn from(k: KindName) -> Self {
        match k {
            KindName::Float => AttributeKind::Float,
            KindName::Int => AttributeKind::Int,
            KindName::Category => AttributeKind::Category,
        }
    }
}

impl AttributeSpec {
    /// The attribute name.
    pub fn name(&self) -> &str {
        match self {
            AttributeSpec::Name(n) | AttributeSpec::Full { name: n, .. } => n,
        }
    }
    /// The declared kind, if any.
    pub fn kind(&self) -> Option<AttributeKind> {
        match self {
            AttributeSpec::Name(_) => None,
            AttributeSpec::Full { kind, .. } => kind.map(Into::into),
        }
    }
    /// The declared unit.
    pub fn unit(&self) -> &str {
        match self {
            AttributeSpec::Name(_) => "",
            AttributeSpec::Full { unit, .. } => unit,
        }
    }
}

fn default_id() -> String {
    "targetid".into()
}
fn default_ra() -> String {
    "ra".into()
}
fn default_dec() -> String {
    "dec".into()
}
fn default_image() -> Option<String> {
    Some("image".into())
}
fn default_spectrum() -> Option<String> {
    Some("spectrum".into())
}

/// Which columns mean what. [`Mapping::default`] reads the mock survey and the
/// AstroCLIP Parquet mirror as they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Column of the 64-bit object id (integers ≥ 0).
    #[serde(default = "default_id")]
    pub id: String,
    /// Column of the right ascension, degrees.
    #[serde(default = "default_ra")]
    pub ra: String,
    /// Column of the declination, degrees.
    #[serde(default = "default_dec")]
    pub dec: String,
    /// Column of the g, r, z cutouts (nanomaggies); skipped when absent from the file.
    #[serde(default = "default_image")]
    pub image: Option<String>,
    /// Layout of the image column.
    #[serde(default)]
    pub image_layout: ImageLayout,
    /// Column of the spectra on the 7,781-pixel DESI grid; skipped when absent.
    #[serde(default = "default_spectrum")]
    pub spectrum: Option<String>,
    /// Columns that become attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, AttributeSpec>,
    /// Precomputed embeddings: modality → column. When given, no encoder runs.
    #[serde(default)]
    pub embeddings: BTreeMap<String, String>,
    /// What happens to the other columns.
    #[serde(default)]
    pub unknown_columns: UnknownColumns,
    /// Columns never read (e.g. `spectrum_ivar`), even with `unknown_columns = "keep"`.
    #[serde(default)]
    pub ignore: Vec<String>,
}

impl Default for Mapping {
    fn default() -> Self {
        Mapping {
            id: default_id(),
            ra: default_ra(),
            dec: default_dec(),
            image: default_image(),
            image_layout: ImageLayout::Auto,
            spectrum: default_spectrum(),
            attributes: BTreeMap::new(),
            embeddings: BTreeMap::new(),
            unknown_columns: UnknownColumns::Keep,
            ignore: Vec::new(),
        }
    }
}

impl Mapping {
    /// Reads a mapping from a `.toml` or `.json` file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| IngestError::io(path, e))?;
        let json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let mapping: Mapping = if json {
            serde_json::from_str(&text)
                .map_err(|e| IngestError::malformed(path, None, None, e.to_string()))?
        } else {
            toml::from_str(&text)
                .map_err(|e| IngestError::malformed(path, None, None, e.to_string()))?
        };
        mapping.validate()?;
        Ok(mapping)
    }

    /// Checks attribute and modality names.
    pub fn validate(&self) -> Result<()> {
        for (col, spec) in &self.attributes {
            if !valid_name(spec.name()) {
                return Err(IngestError::invalid(
                    format!("attributes.{col}"),
                    format!(
                        "attribute name `{}` must be 1–64 characters of [a-z0-9_]",
                        spec.name()
                    ),
                ));
            }
        }
        for m in self.embeddings.keys() {
            if !valid_name(m) || m.len() > 32 {
                return Err(IngestError::invalid(
                    format!("embeddings.{m}"),
                    "modality names are 1–32 characters of [a-z0-9_]",
                ));
            }
        }
        Ok(())
    }

    /// Columns the mapping gives a role other than "attribute".
    pub fn role_columns(&self) -> Vec<&str> {
        let mut v = vec![self.id.as_str(), self.ra.as_str(), self.dec.as_str()];
        v.extend(self.image.as_deref());
        v.extend(self.spectrum.as_deref());
        v.extend(self.embeddings.values().map(String::as_str));
        v
    }
}

/// Engine attribute names: `[a-z0-9_]`, 1–64 characters, not reserved.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !matches!(
            name,
            "id" | "ra" | "dec" | "cone" | "and" | "or" | "not" | "in"
        )
}

/// The attribute name an unmapped column is kept under (lower-cased, other
/// characters replaced by `_`), or `None` when no valid name results.
pub fn attribute_name_for(column: &str) -> Option<String> {
    let name: String = column
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '_'
            }
        })
        .collect();
    valid_name(&name).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_and_json_mappings_parse() {
        let m: Mapping = toml::from_str(
            r#"
            id = "TARGETID"
            unknown_columns = "ignore"
            image_layout = "hwc"
            [attributes]
            Z = { name = "redshift", kind = "float" }
            mag_r = "mag_r"
            [embeddings]
            image = "img_emb"
            "#,
        )
        .unwrap();
        assert_eq!(m.id, "TARGETID");
        assert_eq!(m.ra, "ra");
        assert_eq!(m.unknown_columns, UnknownColumns::Ignore);
        assert_eq!(m.image_layout, ImageLayout::Hwc);
        assert_eq!(m.attributes["Z"].name(), "redshift");
        assert_eq!(m.attributes["Z"].kind(), Some(AttributeKind::Float));
        assert_eq!(m.attributes["mag_r"].kind(), None);
        assert_eq!(m.embeddings["image"], "img_emb");
        m.validate().unwrap();
        let j: Mapping = serde_json::from_str(r#"{"id":"object_id","spectrum":null}"#).unwrap();
        assert_eq!(j.spectrum, None);
        assert_eq!(j.image.as_deref(), Some("image"));
    }

    #[test]
    fn typos_and_bad_names_are_refused() {
        assert!(toml::from_str::<Mapping>("idd = \"x\"").is_err());
        let m: Mapping = toml::from_str("[attributes]\nZ = \"Red Shift\"").unwrap();
        assert!(m.validate().is_err());
        assert_eq!(attribute_name_for("MAG_R").as_deref(), Some("mag_r"));
        assert_eq!(attribute_name_for("ra"), None);
        assert_eq!(attribute_name_for("flux-g").as_deref(), Some("flux_g"));
    }
}
