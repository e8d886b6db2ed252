//! The OpenAPI 3.0 description of the API, served at `/openapi.json`. Written by
//! hand next to the handlers, quoting the defaults of [`limits`]; `server/tests/openapi.rs`
//! checks that its paths and methods are exactly the router's, and that its request
//! schemas and query parameters name exactly the fields the request types accept.

use serde_json::{json, Value};

use crate::limits::{
    self, DEFAULT_K, DEFAULT_MAP_POINTS, DEFAULT_MATCH_RADIUS_ARCSEC, DEFAULT_PREDICT_K,
    MAX_MAP_POINTS, MAX_SMOOTH_PIXELS, MIN_SPECTRUM_POINTS,
};

fn num(desc: &str) -> Value {
    json!({"type": "number", "description": desc})
}
fn int(desc: &str) -> Value {
    json!({"type": "integer", "description": desc})
}
fn string(desc: &str) -> Value {
    json!({"type": "string", "description": desc})
}
fn boolean(desc: &str) -> Value {
    json!({"type": "boolean", "description": desc})
}
fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}
fn path_param(name: &str, desc: &str, schema: Value) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": desc, "schema": schema})
}
fn query_param(name: &str, desc: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": desc, "schema": schema})
}
fn collection_param() -> Value {
    path_param(
        "c",
        "Collection name (a directory under --db)",
        json!({"type": "string"}),
    )
}
fn id_param() -> Value {
    path_param(
        "id",
        "Object id (unsigned 64-bit, e.g. DESI TARGETID)",
        json!({"type": "integer", "format": "uint64"}),
    )
}
fn json_body(schema: &str) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": reference(schema)}}})
}
fn ok_json(desc: &str, schema: Value) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": schema}}})
}
fn errors(codes: &[&str]) -> serde_json::Map<String, Value> {
    codes
        .iter()
        .map(|c| {
            let what = match *c {
                "400" => "Bad request: the body names the field, what was expected and what was sent",
                "401" => "Missing or wrong bearer key",
                "403" => "Operation disabled on this server (e.g. writes without --api-key-file, uploads without a model)",
                "404" => "Unknown collection, object or blob",
                "413" => "Body larger than the server's limit",
                "503" => "The request took longer than the server's time limit",
                _ => "Internal error (generic body; the detail is logged)",
            };
            (
                c.to_string(),
                json!({"description": what, "content": {"application/json": {"schema": reference("Error")}}}),
            )
        })
        .collect()
}
fn responses(ok: (&str, Value), codes: &[&str]) -> Value {
    let mut m = errors(codes);
    m.insert(ok.0.to_string(), ok.1);
    Value::Object(m)
}

fn schemas() -> Value {
    let query_props = json!({
        "id": int("Query by a stored object's id"),
        "from": string("Modality of the stored object's embedding to search with (`image` or `spectrum`; default `image`)"),
        "position": reference("Position"),
        "vector": {"type": "array", "items": {"type": "number"}, "description": "A raw embedding (the modality's dimension, e.g. 1024; normalised to unit length by the server)"},
        "image": reference("ImageUpload"),
        "spectrum": reference("SpectrumUpload"),
    });
    let option_props = json!({
        "to": string("Modality searched among (`spectrum` for image→spectrum); default: the query's own modality"),
        "k": int(&format!("Number of results, 1..=max_k (server limit, default {}); default {DEFAULT_K}", limits::DEFAULT_MAX_K)),
        "ef": int("HNSW candidate list size (higher: better recall, slower), 1..=max_ef; default the collection's"),
        "filter": string("Catalog filter, e.g. `redshift < 0.3 and mag_r < 19`, `morph_class = 'spiral'`, `cone(150.1, 2.2, 0.05)` (degrees)"),
        "exclude_self": boolean("Leave the query object out of its own results (default true)"),
        "near_duplicate_arcsec": num("Drop results within this many arcsec of the query or of a better-ranked result (default 0: keep all)"),
        "attributes": {"type": "array", "items": {"type": "string"}, "description": "Attributes returned per result (default all; [] for none)"},
    });
    let mut search_props = query_props.as_object().unwrap().clone();
    search_props.extend(option_props.as_object().unwrap().clone());
    search_props.insert(
        "format".into(),
        string("`json` (default), `csv`, `votable` or `parquet` (the `format` query parameter takes precedence)"),
    );
    let mut batch_props = option_props.as_object().unwrap().clone();
    batch_props.insert(
        "queries".into(),
        json!({"type": "array", "items": reference("Query"), "description": format!("The queries (at most max_batch, default {}); the options apply to all", limits::DEFAULT_MAX_BATCH)}),
    );
    let mut predict_props = query_props.as_object().unwrap().clone();
    predict_props.extend(
        json!({
            "attributes": {"type": "array", "items": {"type": "string"}, "description": "Numeric attributes to estimate (default all numeric attributes)"},
            "to": string("Modality whose neighbours vote (default the query's own)"),
            "k": int(&format!("Neighbours used (default {DEFAULT_PREDICT_K})")),
            "ef": int("HNSW candidate list size"),
            "filter": string("Catalog filter on the neighbours"),
        })
        .as_object()
        .unwrap()
        .clone(),
    );
    json!({
        "Error": {"type": "object", "description": "Every error response", "properties": {"error": {"type": "object", "description": "What went wrong", "properties": {
            "status": int("HTTP status"),
            "code": string("Machine-readable code: invalid_field, bad_json, bad_query, bad_filter, body_too_large, unknown_collection, not_found, missing_embedding, unauthorized, forbidden, timeout, internal"),
            "message": string("What went wrong, in words"),
            "field": string("The offending field (4xx only)"),
            "expected": string("What the field accepts (4xx only)"),
            "got": string("What was sent (4xx only)"),
        }}}},
        "Position": {"type": "object", "required": ["ra", "dec"], "description": "Start from the catalogue object nearest to a sky position", "properties": {
            "ra": num("Right ascension, ICRS, degrees"),
            "dec": num("Declination, ICRS, degrees"),
            "radius_arcsec": num(&format!("Match radius, arcsec (default {DEFAULT_MATCH_RADIUS_ARCSEC})")),
        }},
        "ImageUpload": {"type": "object", "description": "An image embedded by the collection's model, read as the ingest reads the same file: exactly one of values, npy, fits, png, jpeg. g, r, z cutouts are mapped to display colours and centre-cropped to the model's input (144 × 144 px at 0.262″/px for AstroCLIP); pictures are centre-cropped to a square and area-resampled to it", "properties": {
            "values": {"type": "array", "items": {"type": "number"}, "description": "Row-major pixel values with `shape`"},
            "shape": {"type": "array", "items": {"type": "integer"}, "description": "[3, height, width] (planar) or [height, width, 3], pixels"},
            "npy": string("Base64 of a .npy array (float32/64 or integers), shape as for values"),
            "fits": string("Base64 of a FITS file whose first [3, height, width] image HDU is a g, r, z cutout in nanomaggies (NAXIS1 = width, NAXIS2 = height, NAXIS3 = 3 bands; order from BAND0..2 or BANDS, else g, r, z)"),
            "png": string("Base64 of a PNG (display colours, RGB)"),
            "jpeg": string("Base64 of a JPEG (display colours, RGB)"),
            "bands": string("For values and npy: `grz` (g, r, z fluxes in nanomaggies; default) or `rgb` (display colours in [0, 1])"),
        }},
        "SpectrumUpload": {"type": "object", "description": "A spectrum embedded by the collection's model, read as the ingest reads the same file: exactly one of values, npy, fits, csv", "properties": {
            "values": {"type": "array", "items": {"type": "number"}, "description": "Flux on the model's grid (DESI: 7,781 pixels, 3600–9824 Å, 0.8 Å steps), 1e-17 erg s⁻¹ cm⁻² Å⁻¹"},
            "npy": string("Base64 of a 1-d .npy flux array"),
            "fits": string("Base64 of a FITS file: a DESI coadd (b, r, z arms combined onto the grid; `targetid` picks the spectrum when it holds several) or a file whose first image HDU is the flux"),
            "csv": string("CSV text: one flux column on the grid (7,781 rows), or wavelength (Å) and flux columns linearly interpolated onto the grid (zero outside the file's range); a header line and # comments allowed"),
            "targetid": {"type": "integer", "description": "TARGETID of the spectrum to take from a DESI coadd given in `fits`"},
        }},
        "Query": {"type": "object", "description": "Exactly one of id, position, vector, image, spectrum", "properties": query_props},
        "SearchRequest": {"type": "object", "description": "A query plus search options", "properties": search_props},
        "BatchRequest": {"type": "object", "required": ["queries"], "properties": batch_props},
        "PredictRequest": {"type": "object", "description": "A query plus estimation options", "properties": predict_props},
        "Result": {"type": "object", "properties": {
            "rank": int("1 = most similar"),
            "id": int("Object id"),
            "score": num("Cosine similarity with the query, in [-1, 1]"),
            "ra": num("Right ascension, ICRS, degrees"),
            "dec": num("Declination, ICRS, degrees"),
            "separation_arcsec": num("Angular distance from the query object, arcsec (null for vector and upload queries)"),
            "attributes": {"type": "object", "description": "Requested attributes (numbers or category labels; units in the collection info)"},
        }},
        "ResolvedQuery": {"type": "object", "properties": {
            "kind": string("id, position, vector, image or spectrum"),
            "id": int("The query object (id and position queries)"),
            "from": string("Modality the query vector came from"),
            "ra": num("Query object's right ascension, ICRS degrees"),
            "dec": num("Query object's declination, ICRS degrees"),
        }},
        "SearchResponse": {"type": "object", "properties": {
            "collection": string("Collection name"),
            "query": reference("ResolvedQuery"),
            "to": string("Modality searched"),
            "results": {"type": "array", "items": reference("Result"), "description": "Results, best first"},
            "timing_ms": {"type": "object", "description": "Milliseconds: encode (uploads), search, total", "properties": {
                "encode": num("Embedding an upload, ms"), "search": num("Engine search, ms"), "total": num("Whole request, ms")}},
        }},
        "Estimate": {"type": "object", "properties": {
            "value": num("Distance-weighted mean of the neighbours' values (weights 1/d, d the Euclidean distance between unit vectors), in the attribute's unit"),
            "spread": num("Weighted standard deviation of the neighbours' values, attribute's unit"),
            "p16": num("16th percentile of the neighbours' values"),
            "p84": num("84th percentile of the neighbours' values"),
            "unit": string("The attribute's unit"),
            "actual": num("The query object's own value, when it has one"),
            "neighbours": {"type": "array", "description": "Neighbours used (id, score = cosine similarity, value)", "items": {"type": "object"}},
        }},
        "Collection": {"type": "object", "properties": {
            "name": string("Collection name"),
            "objects": int("Live objects"),
            "model": string("Model the embeddings came from"),
            "has_encoder": boolean("Whether uploads can be embedded (a model is stored in the collection)"),
            "index_state": string("indexed, partial (recent writes are scanned exactly) or unindexed"),
            "modalities": {"type": "array", "description": "Per modality: name, dim, vectors, indexed_rows, unindexed_rows, graph_points, graph_loaded", "items": {"type": "object", "properties": {
                "name": string("Modality"), "dim": int("Embedding dimension"), "vectors": int("Live embeddings"),
                "indexed_rows": int("Rows in the HNSW graph"), "unindexed_rows": int("Rows scanned exactly"),
                "graph_points": int("Graph nodes"), "graph_loaded": boolean("Graph loaded from disk at open")}}},
            "attributes": {"type": "array", "description": "Collection info only: per attribute name, kind, unit, count, min, max (numeric) or values with counts (categories)", "items": {"type": "object"}},
            "hnsw": {"type": "object", "description": "Collection info only: HNSW parameters m, ef_construction, ef_search"},
        }},
        "Object": {"type": "object", "properties": {
            "id": int("Object id"),
            "ra": num("Right ascension, ICRS, degrees"),
            "dec": num("Declination, ICRS, degrees"),
            "attributes": {"type": "object", "description": "Attribute values by name"},
            "modalities": {"type": "array", "items": {"type": "string"}, "description": "Modalities with an embedding"},
            "blobs": {"type": "array", "items": {"type": "string"}, "description": "Stored blobs (thumb.png, image.png, spectrum.f16)"},
            "links": {"type": "object", "description": "URLs of the image, thumbnail and spectrum"},
        }},
        "PutObject": {"type": "object", "required": ["ra", "dec"], "properties": {
            "ra": num("Right ascension, ICRS, degrees in [0, 360]"),
            "dec": num("Declination, ICRS, degrees in [-90, 90]"),
            "attributes": {"type": "object", "description": "Declared attributes: numbers (float/int) or strings (category)"},
            "embeddings": {"type": "object", "description": "Embedding per modality (arrays of the modality's dimension)"},
            "image": reference("ImageUpload"),
            "spectrum": reference("SpectrumUpload"),
        }},
        "Spectrum": {"type": "object", "properties": {
            "id": int("Object id"),
            "wavelength_unit": string("Angstrom (observed frame, vacuum)"),
            "flux_unit": string("1e-17 erg s^-1 cm^-2 Angstrom^-1"),
            "smooth_pixels": int("Boxcar width applied, pixels (0.8 Å each)"),
            "bin_pixels": int("Pixels averaged per returned point"),
            "wavelength": {"type": "array", "items": {"type": "number"}, "description": "Wavelength, Å"},
            "flux": {"type": "array", "items": {"type": "number"}, "description": "Flux, 1e-17 erg s⁻¹ cm⁻² Å⁻¹"},
        }},
        "Map": {"type": "object", "properties": {
            "modality": string("Modality projected"),
            "method": string("Projection method (PCA)"),
            "explained_variance": {"type": "array", "items": {"type": "number"}, "description": "Fraction of the sample's variance on each axis"},
            "total_vectors": int("Live vectors of the modality"),
            "points": int("Points returned"),
            "ids": {"type": "array", "items": {"type": "integer"}, "description": "Object ids"},
            "x": {"type": "array", "items": {"type": "number"}, "description": "First principal coordinate (dimensionless)"},
            "y": {"type": "array", "items": {"type": "number"}, "description": "Second principal coordinate (dimensionless)"},
            "color": string("Attribute used for colouring"),
            "values": {"type": "array", "description": "The colour attribute's value per point (null when missing)"},
        }},
    })
}

/// The document.
pub fn document() -> Value {
    let c = collection_param();
    let table_types = json!({
        "application/json": {"schema": reference("SearchResponse")},
        "text/csv": {"schema": {"type": "string"}},
        "application/x-votable+xml": {"schema": {"type": "string"}},
        "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
    });
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "astrovec",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Cross-modal (image ↔ spectrum) similarity search over AstroCLIP galaxy embeddings. Positions are ICRS degrees; separations arcsec unless stated. Reads are open unless the server has a read key; writes need the API key (`Authorization: Bearer <key>`).",
        },
        "components": {
            "schemas": schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/": {"get": {"summary": "The web page (embedded in the binary)", "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}}}},
            "/assets/{path}": {"get": {"summary": "Static files of the web page", "parameters": [path_param("path", "File under /assets/", json!({"type": "string"}))],
                "responses": responses(("200", json!({"description": "The file"})), &["404"])}},
            "/health": {"get": {"summary": "Liveness: status, version, collection names", "responses": responses(("200", ok_json("Healthy", json!({"type": "object"}))), &[])}},
            "/metrics": {"get": {"summary": "Prometheus metrics: requests by route/method/status, latency histograms (seconds), collection sizes", "responses": responses(("200", json!({"description": "Prometheus text format 0.0.4", "content": {"text/plain": {}}})), &["401"])}},
            "/openapi.json": {"get": {"summary": "This document", "responses": responses(("200", ok_json("OpenAPI 3", json!({"type": "object"}))), &[])}},
            "/v1/collections": {"get": {"summary": "Served collections with sizes, modalities and index state", "responses": responses(("200", ok_json("Collections", json!({"type": "object", "properties": {"collections": {"type": "array", "items": reference("Collection")}}}))), &["401"])}},
            "/v1/collections/{c}": {"get": {"summary": "One collection: size, modalities, dimensions, model, index state, attributes with ranges (for filter widgets)", "parameters": [c],
                "responses": responses(("200", ok_json("Collection info", reference("Collection"))), &["401", "404", "500"])}},
            "/v1/collections/{c}/search": {"post": {"summary": "Similarity search from an id, a position, a vector or an uploaded image/spectrum",
                "parameters": [collection_param(), query_param("format", "json (default), csv, votable or parquet", json!({"type": "string"}))],
                "requestBody": json_body("SearchRequest"),
                "responses": responses(("200", json!({"description": "Results, best first", "content": table_types})), &["400", "401", "403", "404", "413", "500", "503"])}},
            "/v1/collections/{c}/search/batch": {"post": {"summary": "Many searches in one call (shared options)", "parameters": [collection_param()],
                "requestBody": json_body("BatchRequest"),
                "responses": responses(("200", ok_json("One response per query, in order", json!({"type": "object", "properties": {"responses": {"type": "array", "items": reference("SearchResponse")}}}))), &["400", "401", "403", "404", "413", "500", "503"])}},
            "/v1/collections/{c}/predict": {"post": {"summary": "k-NN estimates of numeric attributes (redshift, stellar mass, …) with the neighbours' spread", "parameters": [collection_param()],
                "requestBody": json_body("PredictRequest"),
                "responses": responses(("200", ok_json("Estimates by attribute", json!({"type": "object", "properties": {"estimates": {"type": "object", "additionalProperties": reference("Estimate")}}}))), &["400", "401", "403", "404", "413", "500", "503"])}},
            "/v1/collections/{c}/map": {"get": {"summary": "2-D PCA projection of a modality's embeddings (evenly spaced sample, cached), with an attribute for colouring",
                "parameters": [collection_param(), query_param("modality", "Modality (default image)", json!({"type": "string"})),
                    query_param("color", "Attribute returned per point", json!({"type": "string"})),
                    query_param("points", &format!("Sample size, 1–{MAX_MAP_POINTS} (default {DEFAULT_MAP_POINTS})"), json!({"type": "integer"}))],
                "responses": responses(("200", ok_json("The projection", reference("Map"))), &["400", "401", "404"])}},
            "/v1/collections/{c}/objects/{id}": {
                "get": {"summary": "An object's position, attributes, modalities and blob links", "parameters": [collection_param(), id_param()],
                    "responses": responses(("200", ok_json("The object", reference("Object"))), &["400", "401", "404"])},
                "put": {"summary": "Insert or replace an object with embeddings or raw data (needs the API key)", "security": [{"bearer": []}],
                    "parameters": [collection_param(), id_param()], "requestBody": json_body("PutObject"),
                    "responses": responses(("200", ok_json("Replaced (201 when created): collection, id, created", json!({"type": "object"}))), &["400", "401", "403", "404", "413", "500"])},
                "delete": {"summary": "Delete an object (needs the API key)", "security": [{"bearer": []}], "parameters": [collection_param(), id_param()],
                    "responses": responses(("200", ok_json("Deleted", json!({"type": "object"}))), &["401", "403", "404"])},
            },
            "/v1/collections/{c}/objects/{id}/image.png": {"get": {"summary": "The object's cutout as PNG (Legacy Survey g, r, z → RGB mapping, rendered at ingest and cached)",
                "parameters": [collection_param(), id_param(), query_param("size", "full (default) or thumb (≤ 96 px a side)", json!({"type": "string"}))],
                "responses": responses(("200", json!({"description": "PNG", "content": {"image/png": {}}})), &["400", "401", "404"])}},
            "/v1/collections/{c}/objects/{id}/spectrum": {"get": {"summary": "The object's spectrum: wavelength (Å) and flux (1e-17 erg s⁻¹ cm⁻² Å⁻¹), optionally smoothed and down-sampled",
                "parameters": [collection_param(), id_param(),
                    query_param("smooth", &format!("Boxcar width, pixels (odd, 1–{MAX_SMOOTH_PIXELS}; 1 pixel = 0.8 Å)"), json!({"type": "integer"})),
                    query_param("max_points", &format!("Average adjacent pixels down to at most this many points (≥ {MIN_SPECTRUM_POINTS})"), json!({"type": "integer"}))],
                "responses": responses(("200", ok_json("The spectrum", reference("Spectrum"))), &["400", "401", "404"])}},
            "/scs/{c}": {"get": {"summary": "IVOA Simple Cone Search 1.03 (VOTable; errors are VOTables with an Error INFO)",
                "parameters": [collection_param(),
                    json!({"name": "RA", "in": "query", "required": true, "description": "Cone centre right ascension, ICRS degrees", "schema": {"type": "number"}}),
                    json!({"name": "DEC", "in": "query", "required": true, "description": "Cone centre declination, ICRS degrees", "schema": {"type": "number"}}),
                    json!({"name": "SR", "in": "query", "required": true, "description": "Search radius, degrees (0: metadata only)", "schema": {"type": "number"}}),
                    query_param("VERB", "1: id and position; 2 or 3 (default 2): also separation and every attribute", json!({"type": "integer"}))],
                "responses": responses(("200", json!({"description": "VOTable 1.3", "content": {"text/xml": {}}})), &["401"])}},
        },
    })
}
