//! What containerd's three generations need of the shim's protocol: the `start` reply,
//! and the task API under both its v2 and v3 names.

use protobuf::Message;
use skiff_integration::bundle::{busybox_bundle, TempDir};
use skiff_integration::containerd::shim_binary;
use skiff_integration::shim_client::ShimProcess;
use skiff_protos::shim::{ConnectRequest, ConnectResponse, ShutdownRequest};

#[test]
fn start_prints_a_plain_address_and_the_task_api_answers_as_v2_and_v3() {
    let tmp = TempDir::new("skiff-proto").unwrap();
    let _cgroups = skiff_integration::containerd::CgroupCleanup("skiff-proto".into());
    let bundle = busybox_bundle(&tmp.path().join("b"), &["true"], "/skiff-proto/x").unwrap();
    let shim = ShimProcess::start(
        &shim_binary(),
        &bundle,
        "skiff-proto",
        "proto",
        &tmp.path().join("containerd.sock").to_string_lossy(),
        "",
    )
    .unwrap();
    // The bootstrap reply is a bare unix:// address: containerd 1.6 dials exactly what
    // it reads, and 1.7/2.x take a non-JSON reply as that same (v2 ttrpc) form.
    assert!(
        shim.address.starts_with("unix:///run/containerd/s/"),
        "{}",
        shim.address
    );
    assert!(!shim.address.contains('{'));

    let client = ttrpc::Client::connect(&shim.address).unwrap();
    for service in ["containerd.task.v2.Task", "containerd.task.v3.Task"] {
        let req = ttrpc::Request {
            service: service.into(),
            method: "Connect".into(),
            payload: ConnectRequest {
                id: "proto".into(),
                ..Default::default()
            }
            .write_to_bytes()
            .unwrap(),
            timeout_nano: 5_000_000_000,
            ..Default::default()
        };
        let res = client
            .request(req)
            .unwrap_or_else(|e| panic!("{service}: {e:?}"));
        let status = res.status.clone().unwrap_or_default();
        assert_eq!(
            status.code(),
            ttrpc::Code::OK,
            "{service}: {}",
            status.message()
        );
        let connect = ConnectResponse::parse_from_bytes(&res.payload).unwrap();
        assert_eq!(connect.shim_pid, shim.pid, "{service} Connect");
    }
    let _ = shim
        .client
        .shutdown(ShimProcess::ctx(), &ShutdownRequest::default());
}
