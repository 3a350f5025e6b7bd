//! Alibaba Cloud request signatures as pure functions: RPC HMAC-SHA1 ("V1",
//! `SignatureVersion=1.0`) and ACS3-HMAC-SHA256 ("V3"). No clock, no randomness:
//! timestamps and nonces are arguments, so the official SDK's vectors reproduce
//! exactly. The simulator verifies requests with these same functions.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// RFC 3986 unreserved characters stay; everything else is `%XX` (upper-case hex).
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// SHA-256 of an empty body, sent in `x-acs-content-sha256` for bodiless requests.
pub const EMPTY_BODY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Percent-encodes the UTF-8 bytes of `s` the way both signatures require
/// (space → `%20`, `*` → `%2A`, `~` kept).
pub fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, RFC3986).to_string()
}

/// `k=v&k=v` with keys sorted by byte order and both sides percent-encoded.
pub fn canonical_query(params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    sorted
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// V1 StringToSign: `METHOD&%2F&enc(canonical query)`; `Signature` itself is excluded.
pub fn v1_string_to_sign(method: &str, params: &[(String, String)]) -> String {
    let signed: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "Signature")
        .cloned()
        .collect();
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        percent_encode("/"),
        percent_encode(&canonical_query(&signed))
    )
}

/// V1 signature: base64(HMAC-SHA1(secret + "&", StringToSign)).
pub fn v1_signature(access_key_secret: &str, string_to_sign: &str) -> String {
    let key = format!("{access_key_secret}&");
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The common parameters a V1 request carries besides the operation's own.
pub struct V1Common<'a> {
    pub action: &'a str,
    pub version: &'a str,
    pub access_key_id: &'a str,
    pub security_token: Option<&'a str>,
    pub nonce: &'a str,
    /// `yyyy-MM-ddTHH:mm:ssZ`, UTC.
    pub timestamp: &'a str,
}

/// Adds the common parameters and `Signature` to `params`, ready to send as the query.
pub fn sign_v1(
    method: &str,
    mut params: Vec<(String, String)>,
    common: &V1Common<'_>,
    access_key_secret: &str,
) -> Vec<(String, String)> {
    let mut add = |k: &str, v: &str| params.push((k.to_string(), v.to_string()));
    add("Action", common.action);
    add("Version", common.version);
    add("Format", "JSON");
    add("AccessKeyId", common.access_key_id);
    add("SignatureMethod", "HMAC-SHA1");
    add("SignatureVersion", "1.0");
    add("SignatureNonce", common.nonce);
    add("Timestamp", common.timestamp);
    if let Some(token) = common.security_token {
        add("SecurityToken", token);
    }
    let string_to_sign = v1_string_to_sign(method, &params);
    let signature = v1_signature(access_key_secret, &string_to_sign);
    params.push(("Signature".to_string(), signature));
    params
}

/// Lower-case hex SHA-256.
pub fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// V3 canonical request and the `SignedHeaders` list. Header names are
/// lower-cased and values trimmed; every header given is signed.
pub fn v3_canonical_request(
    method: &str,
    query: &[(String, String)],
    headers: &[(String, String)],
    body: &[u8],
) -> (String, String) {
    let mut lowered: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    lowered.sort();
    let canonical_headers: String = lowered.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = lowered
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical = format!(
        "{}\n/\n{}\n{}\n{}\n{}",
        method.to_ascii_uppercase(),
        canonical_query(query),
        canonical_headers,
        signed_headers,
        hex_sha256(body)
    );
    (canonical, signed_headers)
}

/// `ACS3-HMAC-SHA256\n` + hex SHA-256 of the canonical request.
pub fn v3_string_to_sign(canonical_request: &str) -> String {
    format!(
        "ACS3-HMAC-SHA256\n{}",
        hex_sha256(canonical_request.as_bytes())
    )
}

/// Hex HMAC-SHA256 keyed with the bare secret (no trailing `&`, unlike V1).
pub fn v3_signature(access_key_secret: &str, string_to_sign: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(access_key_secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

pub fn v3_authorization(access_key_id: &str, signed_headers: &str, signature: &str) -> String {
    format!(
        "ACS3-HMAC-SHA256 Credential={access_key_id},SignedHeaders={signed_headers},Signature={signature}"
    )
}

/// The headers a V3 request signs and sends, `Authorization` included.
pub struct V3Common<'a> {
    pub host: &'a str,
    pub action: &'a str,
    pub version: &'a str,
    pub access_key_id: &'a str,
    pub security_token: Option<&'a str>,
    pub nonce: &'a str,
    pub date: &'a str,
}

pub fn sign_v3(
    method: &str,
    query: &[(String, String)],
    body: &[u8],
    common: &V3Common<'_>,
    access_key_secret: &str,
) -> Vec<(String, String)> {
    let mut headers = vec![
        ("host".to_string(), common.host.to_string()),
        ("x-acs-action".to_string(), common.action.to_string()),
        ("x-acs-version".to_string(), common.version.to_string()),
        ("x-acs-date".to_string(), common.date.to_string()),
        (
            "x-acs-signature-nonce".to_string(),
            common.nonce.to_string(),
        ),
        ("x-acs-content-sha256".to_string(), hex_sha256(body)),
    ];
    if let Some(token) = common.security_token {
        headers.push((
            "x-acs-accesskey-id".to_string(),
            common.access_key_id.to_string(),
        ));
        headers.push(("x-acs-security-token".to_string(), token.to_string()));
    }
    let (canonical, signed_headers) = v3_canonical_request(method, query, &headers, body);
    let signature = v3_signature(access_key_secret, &v3_string_to_sign(&canonical));
    headers.push((
        "authorization".to_string(),
        v3_authorization(common.access_key_id, &signed_headers, &signature),
    ));
    headers
}

/// The parts of a V3 `Authorization` header.
#[derive(Debug, PartialEq, Eq)]
pub struct V3Authorization {
    pub access_key_id: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Reads `ACS3-HMAC-SHA256 Credential=…,SignedHeaders=…,Signature=…`.
pub fn parse_v3_authorization(value: &str) -> Option<V3Authorization> {
    let rest = value.strip_prefix("ACS3-HMAC-SHA256")?.trim();
    let mut id = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => id = Some(v.to_string()),
            "SignedHeaders" => signed = Some(v.split(';').map(str::to_string).collect()),
            "Signature" => signature = Some(v.to_string()),
            _ => {}
        }
    }
    Some(V3Authorization {
        access_key_id: id?,
        signed_headers: signed?,
        signature: signature?,
    })
}

#[cfg(test)]
mod tests {
    //! Vectors from protocols.md, produced by the official Alibaba Cloud SDKs.
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn v1a_params() -> Vec<(String, String)> {
        params(&[
            ("AccessKeyId", "testid"),
            ("Action", "ListJobStep"),
            ("DtsJobId", "l3m1jdq9m1xxxxx"),
            ("Format", "json"),
            ("RegionId", "cn-hangzhou"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2024-05-01T12:00:00Z"),
            ("Version", "2020-01-01"),
        ])
    }

    #[test]
    fn v1_a_list_job_step() {
        let sts = v1_string_to_sign("POST", &v1a_params());
        assert_eq!(
            sts,
            "POST&%2F&AccessKeyId%3Dtestid%26Action%3DListJobStep%26DtsJobId%3Dl3m1jdq9m1xxxxx%26Format%3Djson%26RegionId%3Dcn-hangzhou%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D2024-05-01T12%253A00%253A00Z%26Version%3D2020-01-01"
        );
        assert_eq!(
            v1_signature("testsecret", &sts),
            "uJb9PPQZlekZvTGvZJmqktxgxr4="
        );
    }

    #[test]
    fn v1_b_sts_token_post_and_get() {
        let mut p = v1a_params();
        p.push((
            "SecurityToken".into(),
            "CAIS+token/with=special&chars".into(),
        ));
        let sts = v1_string_to_sign("POST", &p);
        assert_eq!(
            sts,
            "POST&%2F&AccessKeyId%3Dtestid%26Action%3DListJobStep%26DtsJobId%3Dl3m1jdq9m1xxxxx%26Format%3Djson%26RegionId%3Dcn-hangzhou%26SecurityToken%3DCAIS%252Btoken%252Fwith%253Dspecial%2526chars%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D2024-05-01T12%253A00%253A00Z%26Version%3D2020-01-01"
        );
        assert_eq!(
            v1_signature("testsecret", &sts),
            "WsY/6qNqeeUjgto0DwDIjnZCNLk="
        );
        let get = v1_string_to_sign("GET", &p);
        assert_eq!(
            v1_signature("testsecret", &get),
            "Cu2KSwLvpgLDldKX26KYOqyMofU="
        );
    }

    #[test]
    fn v1_c_encoding_edge_cases() {
        let p = params(&[
            ("AccessKeyId", "testid"),
            ("Action", "DescribeDtsJobs"),
            ("Format", "json"),
            ("Params", "a b*c~d/e+f=g&h:i,中"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "nonce-0001"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2024-05-01T12:00:00Z"),
            ("Version", "2020-01-01"),
        ]);
        let sts = v1_string_to_sign("POST", &p);
        assert_eq!(
            sts,
            "POST&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeDtsJobs%26Format%3Djson%26Params%3Da%2520b%252Ac~d%252Fe%252Bf%253Dg%2526h%253Ai%252C%25E4%25B8%25AD%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3Dnonce-0001%26SignatureVersion%3D1.0%26Timestamp%3D2024-05-01T12%253A00%253A00Z%26Version%3D2020-01-01"
        );
        assert_eq!(
            v1_signature("testsecret", &sts),
            "b0y/OA6/W5brBhSxUnHK1aZ9UQM="
        );
    }

    #[test]
    fn v1_d_docs_describe_regions_get() {
        let p = params(&[
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("Format", "XML"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2016-02-23T12:46:24Z"),
            ("Version", "2014-05-26"),
        ]);
        let sts = v1_string_to_sign("GET", &p);
        assert_eq!(
            sts,
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
        );
        assert_eq!(
            v1_signature("testsecret", &sts),
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
        );
    }

    #[test]
    fn v1_e_docs_describe_dedicated_hosts_get_and_post() {
        let p = params(&[
            ("AccessKeyId", "testid"),
            ("Action", "DescribeDedicatedHosts"),
            ("Format", "JSON"),
            ("RegionId", "cn-beijing"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "edb2b34af0af9a6d14deaf7c1a5315eb"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2023-03-13T08:34:30Z"),
            ("Version", "2014-05-26"),
        ]);
        let sts = v1_string_to_sign("GET", &p);
        assert_eq!(
            sts,
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeDedicatedHosts%26Format%3DJSON%26RegionId%3Dcn-beijing%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3Dedb2b34af0af9a6d14deaf7c1a5315eb%26SignatureVersion%3D1.0%26Timestamp%3D2023-03-13T08%253A34%253A30Z%26Version%3D2014-05-26"
        );
        assert_eq!(
            v1_signature("testsecret", &sts),
            "9NaGiOspFP5UPcwX8Iwt2YJXXuk="
        );
        let post = v1_string_to_sign("POST", &p);
        assert_eq!(
            v1_signature("testsecret", &post),
            "ZvQ9xGiFnquSJRvj+WE6kdSpTwU="
        );
    }

    #[test]
    fn sign_v1_adds_common_parameters_and_signature() {
        let signed = sign_v1(
            "POST",
            params(&[("DtsJobId", "l3m1jdq9m1xxxxx"), ("RegionId", "cn-hangzhou")]),
            &V1Common {
                action: "ListJobStep",
                version: "2020-01-01",
                access_key_id: "testid",
                security_token: None,
                nonce: "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
                timestamp: "2024-05-01T12:00:00Z",
            },
            "testsecret",
        );
        let get = |k: &str| {
            signed
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("Format"), Some("JSON"));
        assert_eq!(get("SignatureVersion"), Some("1.0"));
        // Same as V1-A except Format=JSON (the core SDK's spelling), so recompute.
        let sts = v1_string_to_sign("POST", &signed);
        assert_eq!(
            get("Signature"),
            Some(v1_signature("testsecret", &sts).as_str())
        );
        assert_eq!(signed.last().map(|(k, _)| k.as_str()), Some("Signature"));
    }

    #[test]
    fn percent_encoding_edge_cases() {
        assert_eq!(percent_encode("a b"), "a%20b");
        assert_eq!(percent_encode("*"), "%2A");
        assert_eq!(percent_encode("~"), "~");
        assert_eq!(percent_encode("/+=&:,"), "%2F%2B%3D%26%3A%2C");
        assert_eq!(percent_encode("预检查"), "%E9%A2%84%E6%A3%80%E6%9F%A5");
        assert_eq!(percent_encode("A-z_0.9"), "A-z_0.9");
    }

    fn v3b_headers() -> Vec<(String, String)> {
        params(&[
            ("host", "dts.aliyuncs.com"),
            ("x-acs-action", "ListJobStep"),
            ("x-acs-content-sha256", EMPTY_BODY_SHA256),
            ("x-acs-date", "2024-05-01T12:00:00Z"),
            (
                "x-acs-signature-nonce",
                "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
            ),
            ("x-acs-version", "2020-01-01"),
        ])
    }

    #[test]
    fn v3_a_docs_worked_example() {
        let query = params(&[
            (
                "ImageId",
                "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
            ),
            ("RegionId", "cn-shanghai"),
        ]);
        let headers = params(&[
            ("host", "ecs.cn-shanghai.aliyuncs.com"),
            ("x-acs-action", "RunInstances"),
            ("x-acs-content-sha256", EMPTY_BODY_SHA256),
            ("x-acs-date", "2023-10-26T10:22:32Z"),
            ("x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d"),
            ("x-acs-version", "2014-05-26"),
        ]);
        let (canonical, _) = v3_canonical_request("POST", &query, &headers, b"");
        assert_eq!(
            hex_sha256(canonical.as_bytes()),
            "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
        );
        assert_eq!(
            v3_signature("YourAccessKeySecret", &v3_string_to_sign(&canonical)),
            "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
        );
    }

    #[test]
    fn v3_b_list_job_step_minimal_headers() {
        let query = params(&[("DtsJobId", "l3m1jdq9m1xxxxx"), ("RegionId", "cn-hangzhou")]);
        let (canonical, signed) = v3_canonical_request("POST", &query, &v3b_headers(), b"");
        assert_eq!(
            canonical,
            "POST\n/\nDtsJobId=l3m1jdq9m1xxxxx&RegionId=cn-hangzhou\nhost:dts.aliyuncs.com\nx-acs-action:ListJobStep\nx-acs-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nx-acs-date:2024-05-01T12:00:00Z\nx-acs-signature-nonce:3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf\nx-acs-version:2020-01-01\n\nhost;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let sts = v3_string_to_sign(&canonical);
        assert_eq!(
            sts,
            "ACS3-HMAC-SHA256\nda9622c86673902c76830b3202e9af71b7c0297b949d37358e978ecfee82f57d"
        );
        let signature = v3_signature("testsecret", &sts);
        assert_eq!(
            v3_authorization("testid", &signed, &signature),
            "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=2c8f63615bebc083710ddd038ea8b592a4af2ddc170cb715bec69266589c5e88"
        );
    }

    #[test]
    fn v3_b_with_sts_token() {
        let query = params(&[("DtsJobId", "l3m1jdq9m1xxxxx"), ("RegionId", "cn-hangzhou")]);
        let mut headers = v3b_headers();
        headers.push(("x-acs-accesskey-id".into(), "testid".into()));
        headers.push((
            "x-acs-security-token".into(),
            "CAIS+token/with=special&chars".into(),
        ));
        let (canonical, _) = v3_canonical_request("POST", &query, &headers, b"");
        assert_eq!(
            v3_signature("testsecret", &v3_string_to_sign(&canonical)),
            "bca9ca3b3712baa414f65e175208ecb91eba960ccf305a93401f2e859220c445"
        );
    }

    #[test]
    fn v3_query_encoding_check() {
        let query = params(&[
            ("Params", "a b*c~d/e+f=g&h:i,中"),
            ("RegionId", "cn-hangzhou"),
        ]);
        let headers = params(&[
            ("host", "dts.aliyuncs.com"),
            ("x-acs-action", "DescribeDtsJobs"),
            ("x-acs-content-sha256", EMPTY_BODY_SHA256),
            ("x-acs-date", "2024-05-01T12:00:00Z"),
            ("x-acs-signature-nonce", "nonce-0001"),
            ("x-acs-version", "2020-01-01"),
        ]);
        assert_eq!(
            canonical_query(&query),
            "Params=a%20b%2Ac~d%2Fe%2Bf%3Dg%26h%3Ai%2C%E4%B8%AD&RegionId=cn-hangzhou"
        );
        let (canonical, _) = v3_canonical_request("POST", &query, &headers, b"");
        assert_eq!(
            v3_signature("testsecret", &v3_string_to_sign(&canonical)),
            "017c4e0583d0b5adad537f848021c7b9db71499bd303125d643a647c171db10e"
        );
    }

    #[test]
    fn v3_unmodified_dts_client_signing_all_its_headers() {
        let query = params(&[("DtsJobId", "l3m1jdq9m1xxxxx"), ("RegionId", "cn-hangzhou")]);
        let mut headers = v3b_headers();
        headers.push(("accept".into(), "application/json".into()));
        headers.push(("user-agent".into(), "test-agent".into()));
        headers.push(("x-acs-credentials-provider".into(), "static_ak".into()));
        let (canonical, _) = v3_canonical_request("POST", &query, &headers, b"");
        assert_eq!(
            v3_signature("testsecret", &v3_string_to_sign(&canonical)),
            "1e2ac5b250797ec3221599db0dd0626dad6cc9fc464be7b8c367a72f47495324"
        );
    }

    #[test]
    fn sign_v3_produces_a_parsable_authorization_matching_the_vector() {
        let query = params(&[("DtsJobId", "l3m1jdq9m1xxxxx"), ("RegionId", "cn-hangzhou")]);
        let headers = sign_v3(
            "POST",
            &query,
            b"",
            &V3Common {
                host: "dts.aliyuncs.com",
                action: "ListJobStep",
                version: "2020-01-01",
                access_key_id: "testid",
                security_token: None,
                nonce: "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
                date: "2024-05-01T12:00:00Z",
            },
            "testsecret",
        );
        let auth = headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.clone())
            .unwrap();
        let parsed = parse_v3_authorization(&auth).unwrap();
        assert_eq!(parsed.access_key_id, "testid");
        assert_eq!(
            parsed.signature,
            "2c8f63615bebc083710ddd038ea8b592a4af2ddc170cb715bec69266589c5e88"
        );
        assert_eq!(parsed.signed_headers.len(), 6);
    }
}
