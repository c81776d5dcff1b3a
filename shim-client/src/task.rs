//! Task API calls to a shim, under the service name its bootstrap chose (task v2, or v3
//! when a shim announces it).

use crate::bootstrap::Bootstrap;
use protobuf::Message;
use std::time::Duration;

pub struct TaskClient {
    client: ttrpc::Client,
    service: &'static str,
}

impl TaskClient {
    pub fn connect(b: &Bootstrap) -> Result<TaskClient, String> {
        let client = ttrpc::Client::connect(&b.address)
            .map_err(|e| format!("cannot connect to {}: {e}", b.address))?;
        let service = if b.version >= 3 {
            "containerd.task.v3.Task"
        } else {
            "containerd.task.v2.Task"
        };
        Ok(TaskClient { client, service })
    }

    /// One unary call; a status other than OK comes back as `Error::RpcStatus`.
    pub fn call<Req: Message, Resp: Message>(
        &self,
        method: &str,
        req: &Req,
        timeout: Duration,
    ) -> ttrpc::Result<Resp> {
        let mut request = ttrpc::Request::new();
        request.service = self.service.to_string();
        request.method = method.to_string();
        request.timeout_nano = timeout.as_nanos().min(i64::MAX as u128) as i64;
        request.payload = req
            .write_to_bytes()
            .map_err(|e| ttrpc::Error::Others(e.to_string()))?;
        let response = self.client.request(request)?;
        Resp::parse_from_bytes(&response.payload)
            .map_err(|e| ttrpc::Error::Others(format!("undecodable reply: {e}")))
    }
}
