//! The DTS endpoint for a region, as the official SDK maps it: most public
//! regions share the central `dts.aliyuncs.com`; any other region gets
//! `dts.<region>.aliyuncs.com`. Pure; an account's `endpoint` overrides it.

/// Regions the official `alibabacloud_dts20200101` client sends to the central endpoint.
const CENTRAL_REGIONS: &[&str] = &[
    "cn-qingdao",
    "cn-beijing",
    "cn-zhangjiakou",
    "cn-huhehaote",
    "cn-hangzhou",
    "cn-shanghai",
    "cn-shenzhen",
    "cn-hongkong",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-5",
    "eu-west-1",
    "us-west-1",
    "us-east-1",
    "eu-central-1",
    "me-east-1",
    "ap-south-1",
    "cn-hangzhou-finance",
    "cn-shanghai-finance-1",
    "cn-shenzhen-finance-1",
    "cn-north-2-gov-1",
    "ap-northeast-2-pop",
    "cn-beijing-finance-1",
    "cn-beijing-finance-pop",
    "cn-beijing-gov-1",
    "cn-beijing-nu16-b01",
    "cn-chengdu",
    "cn-edge-1",
    "cn-fujian",
    "cn-haidian-cm12-c01",
    "cn-hangzhou-bj-b01",
    "cn-hangzhou-internal-prod-1",
    "cn-hangzhou-internal-test-1",
    "cn-hangzhou-internal-test-2",
    "cn-hangzhou-internal-test-3",
    "cn-hangzhou-test-306",
    "cn-hongkong-finance-pop",
    "cn-huhehaote-nebula-1",
    "cn-qingdao-nebula",
    "cn-shanghai-et15-b01",
    "cn-shanghai-et2-b01",
    "cn-shanghai-inner",
    "cn-shanghai-internal-test-1",
    "cn-shenzhen-inner",
    "cn-shenzhen-st4-d01",
    "cn-shenzhen-su18-b01",
    "cn-wuhan",
    "cn-wulanchabu",
    "cn-yushanfang",
    "cn-zhangbei-na61-b01",
    "cn-zhangjiakou-na62-a01",
    "cn-zhengzhou-nebula-1",
    "eu-west-1-oxs",
    "rus-west-1-pop",
];

/// Host name of the DTS endpoint for `region`.
pub fn dts_host(region: &str) -> String {
    if CENTRAL_REGIONS.contains(&region) {
        "dts.aliyuncs.com".to_string()
    } else {
        format!("dts.{region}.aliyuncs.com")
    }
}

/// Base URL for a request: the account override if any, else `https://` + the mapped host.
pub fn base_url(override_url: Option<&str>, region: &str) -> String {
    match override_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => format!("https://{}", dts_host(region)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_regions_like_the_official_sdk() {
        assert_eq!(dts_host("cn-hangzhou"), "dts.aliyuncs.com");
        assert_eq!(dts_host("ap-southeast-1"), "dts.aliyuncs.com");
        assert_eq!(
            dts_host("ap-northeast-1"),
            "dts.ap-northeast-1.aliyuncs.com"
        );
        assert_eq!(dts_host("cn-guangzhou"), "dts.cn-guangzhou.aliyuncs.com");
    }

    #[test]
    fn override_wins() {
        assert_eq!(
            base_url(Some("http://127.0.0.1:9188/"), "cn-hangzhou"),
            "http://127.0.0.1:9188"
        );
        assert_eq!(
            base_url(None, "cn-guangzhou"),
            "https://dts.cn-guangzhou.aliyuncs.com"
        );
    }
}
