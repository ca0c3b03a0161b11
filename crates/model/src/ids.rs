//! Ids in request bodies. JSON has one kind of number, and JSON Schema counts `7.0` as the
//! integer 7, so a client (or a JavaScript runtime) that writes an id as `7.0` is answered as
//! if it wrote `7`; a fraction, a negative number or one past `u64` is refused.

use serde::{Deserialize, Deserializer, de::Error as _};

#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    Int(u64),
    Float(f64),
}

fn id<E: serde::de::Error>(n: Number) -> Result<u64, E> {
    match n {
        Number::Int(i) => Ok(i),
        // below 2^53 every integer is exact in a float
        Number::Float(f) if f.fract() == 0.0 && (0.0..9_007_199_254_740_992.0).contains(&f) => Ok(f as u64),
        Number::Float(f) => Err(E::custom(format!("{f} is not a user id (a whole number, 0 or more)"))),
    }
}

/// One id.
pub fn one<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    id(Number::deserialize(d).map_err(|_| D::Error::custom("expected a user id (a whole number)"))?)
}

/// A list of ids.
pub fn many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    let ns =
        Vec::<Number>::deserialize(d).map_err(|_| D::Error::custom("expected a list of user ids (whole numbers)"))?;
    ns.into_iter().map(id).collect()
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Deserialize)]
    struct Body {
        #[serde(deserialize_with = "super::one")]
        id: u64,
        #[serde(deserialize_with = "super::many")]
        ids: Vec<u64>,
    }

    fn parse(s: &str) -> Result<Body, serde_json::Error> {
        serde_json::from_str(s)
    }

    #[test]
    fn whole_floats_are_ids_and_the_rest_is_refused() {
        let b = parse(r#"{"id": 7.0, "ids": [1, 2.0, 18446744073709551615]}"#).unwrap();
        assert_eq!((b.id, b.ids), (7, vec![1, 2, u64::MAX]));
        for bad in [
            r#"{"id": 7.5, "ids": []}"#,
            r#"{"id": -1, "ids": []}"#,
            r#"{"id": "7", "ids": []}"#,
            r#"{"id": 1, "ids": [1e300]}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
