//! The simulator behaves like the real gateway where a client cannot easily
//! provoke it: nonce reuse, missing Format, unknown actions, the seed verbatim.

use chrono::Utc;
use dtswatch::aliyun::signing::{self, V1Common};
use dtswatch::sim::{DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, Simulator};

use crate::helpers::read_fixture;

fn signed_query(action: &str, nonce: &str, format: Option<&str>, job: &str) -> String {
    let mut params = signing::sign_v1(
        "POST",
        vec![
            ("DtsJobId".to_string(), job.to_string()),
            ("RegionId".to_string(), "cn-hangzhou".to_string()),
        ],
        &V1Common {
            action,
            version: "2020-01-01",
            access_key_id: DEMO_ACCESS_KEY_ID,
            security_token: None,
            nonce,
            timestamp: &Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        },
        DEMO_ACCESS_KEY_SECRET,
    );
    if let Some(format) = format {
        for (k, v) in params.iter_mut() {
            if k == "Format" {
                *v = format.to_string();
            }
        }
        // Format is signed: sign again over the changed value.
        params.retain(|(k, _)| k != "Signature");
        let sts = signing::v1_string_to_sign("POST", &params);
        params.push((
            "Signature".into(),
            signing::v1_signature(DEMO_ACCESS_KEY_SECRET, &sts),
        ));
    }
    signing::canonical_query(&params)
}

async fn post(sim: &Simulator, query: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(format!("{}/?{query}", sim.endpoint()))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn the_seed_job_is_served_byte_for_byte() {
    let sim = Simulator::with_scenario(dtswatch::sim::scenario::LIFECYCLE)
        .await
        .unwrap();
    let (status, body) = post(
        &sim,
        &signed_query("ListJobStep", "n-seed", None, "k2gm967v16f"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, read_fixture("list_job_step_seed.json").trim_end());
}

#[tokio::test]
async fn a_reused_nonce_is_rejected() {
    let sim = Simulator::with_scenario(dtswatch::sim::scenario::LIFECYCLE)
        .await
        .unwrap();
    let query = signed_query("ListJobStep", "same-nonce", None, "k2gm967v16f");
    assert_eq!(post(&sim, &query).await.0, 200);
    let (status, body) = post(&sim, &query).await;
    assert_eq!(status, 400);
    assert!(body.contains("\"Code\":\"SignatureNonceUsed\""), "{body}");
}

#[tokio::test]
async fn without_format_json_the_gateway_answers_xml() {
    let sim = Simulator::with_scenario(dtswatch::sim::scenario::LIFECYCLE)
        .await
        .unwrap();
    let (status, body) = post(
        &sim,
        &signed_query("ListJobStep", "n-xml", Some("XML"), "dtsl1fecyc1e01"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.starts_with("<?xml"), "{body}");
    assert!(body.contains("<JobStepName>预检查</JobStepName>"), "{body}");
}

#[tokio::test]
async fn unknown_actions_and_unsigned_requests_get_real_error_codes() {
    let sim = Simulator::with_scenario(dtswatch::sim::scenario::LIFECYCLE)
        .await
        .unwrap();
    let (status, body) = post(&sim, &signed_query("DeleteEverything", "n-1", None, "x")).await;
    assert_eq!(status, 404);
    assert!(body.contains("InvalidApi.NotFound"), "{body}");
    let (status, body) = post(&sim, "Action=ListJobStep&DtsJobId=x").await;
    assert_eq!(status, 400);
    assert!(body.contains("IncompleteSignature"), "{body}");
}
