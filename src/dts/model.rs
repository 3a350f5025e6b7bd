//! Wire types for DTS `ListJobStep` and `DescribeDtsJobs` responses, read
//! tolerantly: numbers may arrive as strings and strings as numbers, any field
//! may be missing or null, unknown fields are ignored. These types mirror the
//! JSON; `snapshot.rs` turns them into the project's own model.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// `ListJobStep` response body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListJobStepResponse<'a> {
    #[serde(default, deserialize_with = "lenient_bool")]
    pub success: Option<bool>,
    #[serde(default, deserialize_with = "lenient_string", alias = "requestId")]
    pub request_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub code: Option<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub http_status_code: Option<i64>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub err_code: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub err_message: Option<String>,
    #[serde(default, borrow, deserialize_with = "lenient_list")]
    pub job_steps: Vec<WireStep<'a>>,
}

/// One step or sub-step as DTS sends it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireStep<'a> {
    #[serde(default, borrow, deserialize_with = "lenient_text")]
    pub job_step_id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "lenient_text")]
    pub job_step_name: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "lenient_text")]
    pub code: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub serial: Option<i64>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub progress: Option<i64>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub sub_job_count: Option<i64>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub inc_latency_seconds: Option<i64>,
    /// A number on steps and a string on sub-steps in the same response.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub inc_latency_milliseconds: Option<i64>,
    #[serde(default, borrow, deserialize_with = "lenient_text")]
    pub state: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "lenient_text")]
    pub err_msg: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "lenient_list")]
    pub error_details: Vec<WireErrorDetail<'a>>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub need_acceleration: Option<bool>,
    /// Lower camel case on the wire, unlike every other field.
    #[serde(
        default,
        borrow,
        rename = "redisPhaseType",
        alias = "RedisPhaseType",
        deserialize_with = "lenient_text"
    )]
    pub redis_phase_type: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "lenient_list")]
    pub sub_job_steps: Vec<WireStep<'a>>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct WireErrorDetail<'a> {
    #[serde(default, borrow, deserialize_with = "lenient_text")]
    pub error_code: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "lenient_text")]
    pub help_url: Option<Cow<'a, str>>,
}

/// `DescribeDtsJobs` response body (only what discovery needs).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeDtsJobsResponse {
    #[serde(default, deserialize_with = "lenient_bool")]
    pub success: Option<bool>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub request_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub total_record_count: Option<i64>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub page_number: Option<i64>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub page_record_count: Option<i64>,
    #[serde(default, deserialize_with = "lenient_list")]
    pub dts_job_list: Vec<WireDtsJob>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireDtsJob {
    #[serde(default, deserialize_with = "lenient_string")]
    pub dts_job_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub dts_job_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub dts_job_direction: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub job_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_list")]
    pub tag_list: Vec<WireTag>,
    /// Incremental delay in milliseconds (`DescribeDtsJobs`'s unit).
    #[serde(default, deserialize_with = "lenient_i64")]
    pub delay: Option<i64>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub error_message: Option<String>,
    #[serde(default, deserialize_with = "lenient_list")]
    pub error_details: Vec<WireJobError>,
}

/// An `ErrorDetails` entry of a listed job: only the code is read.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireJobError {
    #[serde(default, deserialize_with = "lenient_string")]
    pub error_code: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireTag {
    #[serde(default, deserialize_with = "lenient_string")]
    pub tag_key: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub tag_value: Option<String>,
}

// The lenient readers below are serde visitors rather than a detour through
// `serde_json::Value`: a poll parses forty steps, and the detour doubled the work.

/// What every lenient scalar reader answers alike: null or missing reads as
/// absent, and a list or an object where a scalar belongs is skipped.
macro_rules! absent_unless_scalar {
    ($de:lifetime) => {
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<$de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_seq<A: SeqAccess<$de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            drain_seq(seq).map(|_| None)
        }
        fn visit_map<A: MapAccess<$de>>(self, map: A) -> Result<Self::Value, A::Error> {
            drain_map(map).map(|_| None)
        }
    };
}

struct LenientText;

impl<'de> Visitor<'de> for LenientText {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or a number")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_string())))
    }
    absent_unless_scalar!('de);
}

struct LenientI64;

impl<'de> Visitor<'de> for LenientI64 {
    type Value = Option<i64>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number or a numeric string")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(v).ok())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(v.is_finite().then(|| v.round() as i64))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let v = v.trim();
        Ok(v.parse::<i64>().ok().or_else(|| {
            v.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(|f| f.round() as i64)
        }))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    absent_unless_scalar!('de);
}

struct LenientBool;

impl<'de> Visitor<'de> for LenientBool {
    type Value = Option<bool>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a boolean")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(if v.eq_ignore_ascii_case("true") {
            Some(true)
        } else if v.eq_ignore_ascii_case("false") {
            Some(false)
        } else {
            None
        })
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v != 0))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v != 0))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    absent_unless_scalar!('de);
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// An element of a list: an object becomes `Some(T)`, anything else is skipped.
struct MaybeObject<T>(Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for MaybeObject<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ObjectOrSkip(PhantomData))
            .map(MaybeObject)
    }
}

struct ObjectOrSkip<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectOrSkip<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|_| None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

struct LenientList<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for LenientList<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        while let Some(MaybeObject(item)) = seq.next_element::<MaybeObject<T>>()? {
            items.extend(item);
        }
        Ok(items)
    }
    // XML-to-JSON conversions sometimes collapse a one-element list into an object.
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|t| vec![t])
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// A string, or a number/bool rendered as text; null reads as missing.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(d.deserialize_any(LenientText)?.map(Cow::into_owned))
}

/// Like `lenient_string`, borrowing from the body when the text has no escapes
/// (a poll reads some two hundred texts; most are then never copied).
fn lenient_text<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    d.deserialize_any(LenientText)
}

/// An integer given as a number (possibly fractional) or a numeric string.
fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    d.deserialize_any(LenientI64)
}

/// `true`/`false`, or their string forms.
fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    d.deserialize_any(LenientBool)
}

/// A list of objects; null or a non-list reads as empty, and an element that is
/// not an object is skipped rather than failing the whole response.
fn lenient_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    d.deserialize_any(LenientList(PhantomData))
}
