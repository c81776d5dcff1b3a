//! skiff.v1 over ttrpc: each RPC is a thin call into [`Store`], logged when it fails.

use crate::spec::ProcessRequest;
use crate::storage::trees::Kind;
use crate::store::{ContainerRecord, ImageRecord, NewContainer, Store};
use crate::tasks::{NewExec, NewTask, TaskInfo, Tasks};
use skiff_protos::manager::*;
use skiff_protos::manager_ttrpc::*;
use std::collections::HashMap;
use std::sync::Arc;
use ttrpc::TtrpcContext;

pub struct Api {
    pub store: Arc<Store>,
    pub tasks: Arc<Tasks>,
}

type Res<T> = ttrpc::Result<T>;

fn done<T>(what: &str, r: crate::error::Result<T>) -> Res<T> {
    r.map_err(|e| {
        crate::log::warn(&format!("{what}: {e}"));
        e.into()
    })
}

fn container_msg(c: ContainerRecord) -> Container {
    Container {
        id: c.id,
        labels: c.labels.into_iter().collect(),
        image: c.image,
        runtime_name: c.runtime_name,
        runtime_options: c.runtime_options,
        spec: c.spec,
        snapshotter: c.snapshotter,
        snapshot_key: c.snapshot_key,
        created_at: c.created_at,
        updated_at: c.updated_at,
        ..Default::default()
    }
}

fn image_msg(i: ImageRecord) -> Image {
    Image {
        name: i.name,
        target_digest: i.target_digest,
        target_media_type: i.target_media_type,
        labels: i.labels.into_iter().collect(),
        snapshot_key: i.snapshot_key,
        size: i.size,
        created_at: i.created_at,
        ..Default::default()
    }
}

fn job_items(items: Vec<crate::progress::Item>) -> Vec<JobItem> {
    items
        .into_iter()
        .map(|i| JobItem {
            name: i.name,
            state: i.state,
            done: i.done,
            total: i.total,
            ..Default::default()
        })
        .collect()
}

fn mounts_msg(m: Vec<skiff_protos::mount::Mount>) -> MountsResponse {
    MountsResponse {
        mounts: m,
        ..Default::default()
    }
}

impl Containers for Api {
    fn create_container(&self, _: &TtrpcContext, r: CreateContainerRequest) -> Res<Container> {
        let new = NewContainer {
            id: r.id,
            image: r.image,
            runtime_name: r.runtime_name,
            runtime_options: r.runtime_options,
            labels: r.labels.into_iter().collect(),
            process: ProcessRequest {
                args: r.args,
                env: r.env,
                terminal: r.terminal,
                memory_limit: r.memory_limit,
                mounts: r.mounts,
            },
        };
        done(
            "create container",
            self.store.create_container(&r.namespace, new),
        )
        .map(container_msg)
    }
    fn get_container(&self, _: &TtrpcContext, r: ContainerRequest) -> Res<Container> {
        done(
            "get container",
            self.store.get_container(&r.namespace, &r.id),
        )
        .map(container_msg)
    }
    fn list_containers(
        &self,
        _: &TtrpcContext,
        r: ListContainersRequest,
    ) -> Res<ListContainersResponse> {
        let all = done(
            "list containers",
            self.store.list_containers(&r.namespace, &r.label_filters),
        )?;
        Ok(ListContainersResponse {
            containers: all.into_iter().map(container_msg).collect(),
            ..Default::default()
        })
    }
    fn label_container(&self, _: &TtrpcContext, r: LabelContainerRequest) -> Res<Container> {
        let set = r.labels.into_iter().collect();
        done(
            "label container",
            self.store.label_container(&r.namespace, &r.id, &set),
        )
        .map(container_msg)
    }
    fn delete_container(&self, _: &TtrpcContext, r: ContainerRequest) -> Res<Empty> {
        done(
            "delete container",
            self.tasks.delete_container(&r.namespace, &r.id),
        )
        .map(|_| Empty::default())
    }
}

impl Images for Api {
    fn import_image(&self, _: &TtrpcContext, r: ImportRequest) -> Res<ImportResponse> {
        let name = (!r.name.is_empty()).then_some(r.name.as_str());
        let (job, _done) = self.store.jobs.start(&r.job_id);
        let images = done(
            "import",
            self.store.import(
                &r.namespace,
                std::path::Path::new(&r.path),
                name,
                job.clone(),
            ),
        )?;
        for i in &images {
            crate::log::info(&format!("imported {} ({})", i.name, i.target_digest));
        }
        Ok(ImportResponse {
            images: images.into_iter().map(image_msg).collect(),
            progress: job_items(job.items()),
            ..Default::default()
        })
    }
    fn pull_image(&self, _: &TtrpcContext, r: PullRequest) -> Res<PullResponse> {
        let options = crate::registry::Options {
            config_dir: self.store.registry_config.clone(),
            plain_http: r.plain_http,
            credentials: (!r.username.is_empty()).then(|| (r.username.clone(), r.password.clone())),
        };
        let (job, _done) = self.store.jobs.start(&r.job_id);
        let started = std::time::Instant::now();
        let (result, stats) = self
            .store
            .pull(&r.namespace, &r.reference, &options, job.clone());
        crate::metrics::pulled(result.is_ok(), stats.received, started.elapsed());
        let image = done(&format!("pull {}", r.reference), result)?;
        crate::log::info(&format!(
            "pulled {} ({}): {} bytes received in {:.1} s",
            image.name,
            image.target_digest,
            stats.received,
            started.elapsed().as_secs_f64()
        ));
        Ok(PullResponse {
            image: Some(image_msg(image)).into(),
            progress: job_items(job.items()),
            ..Default::default()
        })
    }
    fn job_progress(&self, _: &TtrpcContext, r: JobRequest) -> Res<JobProgressResponse> {
        let items = self.store.jobs.poll(&r.job_id);
        Ok(JobProgressResponse {
            over: items.is_none(),
            items: job_items(items.unwrap_or_default()),
            ..Default::default()
        })
    }
    fn cancel_job(&self, _: &TtrpcContext, r: JobRequest) -> Res<Empty> {
        if self.store.jobs.cancel(&r.job_id) {
            crate::log::info(&format!("job {} cancelled by its client", r.job_id));
        }
        Ok(Empty::default())
    }
    fn get_image(&self, _: &TtrpcContext, r: ImageRequest) -> Res<Image> {
        done("get image", self.store.get_image(&r.namespace, &r.name)).map(image_msg)
    }
    fn list_images(&self, _: &TtrpcContext, r: ListImagesRequest) -> Res<ListImagesResponse> {
        let all = done("list images", self.store.list_images(&r.namespace))?;
        Ok(ListImagesResponse {
            images: all.into_iter().map(image_msg).collect(),
            ..Default::default()
        })
    }
    fn delete_image(&self, _: &TtrpcContext, r: ImageRequest) -> Res<Empty> {
        done(
            "delete image",
            self.store.delete_image(&r.namespace, &r.name),
        )
        .map(|_| Empty::default())
    }
}

impl Snapshots for Api {
    fn prepare(&self, _: &TtrpcContext, r: PrepareSnapshotRequest) -> Res<MountsResponse> {
        done(
            "prepare",
            self.store
                .prepare(&r.namespace, &r.key, &r.parent, Kind::Active),
        )
        .map(mounts_msg)
    }
    fn view(&self, _: &TtrpcContext, r: PrepareSnapshotRequest) -> Res<MountsResponse> {
        done(
            "view",
            self.store
                .prepare(&r.namespace, &r.key, &r.parent, Kind::View),
        )
        .map(mounts_msg)
    }
    fn commit(&self, _: &TtrpcContext, r: CommitSnapshotRequest) -> Res<Empty> {
        done("commit", self.store.commit(&r.namespace, &r.name, &r.key)).map(|_| Empty::default())
    }
    fn remove(&self, _: &TtrpcContext, r: SnapshotRequest) -> Res<Empty> {
        done(
            "remove snapshot",
            self.store.remove_snapshot(&r.namespace, &r.key),
        )
        .map(|_| Empty::default())
    }
    fn mounts(&self, _: &TtrpcContext, r: SnapshotRequest) -> Res<MountsResponse> {
        done("mounts", self.store.mounts(&r.namespace, &r.key)).map(mounts_msg)
    }
    fn usage(&self, _: &TtrpcContext, r: SnapshotRequest) -> Res<UsageResponse> {
        let (size, inodes) = done("usage", self.store.usage(&r.namespace, &r.key))?;
        Ok(UsageResponse {
            size,
            inodes,
            ..Default::default()
        })
    }
    fn list_snapshots(
        &self,
        _: &TtrpcContext,
        r: ListSnapshotsRequest,
    ) -> Res<ListSnapshotsResponse> {
        let all = done("list snapshots", self.store.list_snapshots(&r.namespace))?;
        Ok(ListSnapshotsResponse {
            snapshots: all
                .into_iter()
                .map(|s| Snapshot {
                    key: s.key,
                    parent: s.parent.unwrap_or_default(),
                    kind: s.kind.as_str().into(),
                    created_at: s.created_at,
                    ..Default::default()
                })
                .collect(),
            snapshotter: self.store.snapshots.driver.name().into(),
            ..Default::default()
        })
    }
}

impl Content for Api {
    fn info(&self, _: &TtrpcContext, r: ContentRequest) -> Res<ContentInfo> {
        let (digest, size, media_type, created_at) = done(
            "content info",
            self.store.content_info(&r.namespace, &r.digest),
        )?;
        Ok(ContentInfo {
            digest,
            size,
            media_type,
            created_at,
            ..Default::default()
        })
    }
    fn list_content(&self, _: &TtrpcContext, r: ListContentRequest) -> Res<ListContentResponse> {
        let all = done("list content", self.store.list_content(&r.namespace))?;
        Ok(ListContentResponse {
            blobs: all
                .into_iter()
                .map(|(digest, size, media_type, created_at)| ContentInfo {
                    digest,
                    size,
                    media_type,
                    created_at,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    }
}

fn task_msg(t: TaskInfo) -> Task {
    Task {
        container_id: t.container_id,
        exec_id: t.exec_id,
        pid: t.pid,
        status: t.status,
        exit_status: t.exit_status,
        exited_at: t.exited_at,
        runtime: t.runtime,
        image: t.image,
        ..Default::default()
    }
}

impl skiff_protos::manager_ttrpc::Tasks for Api {
    fn create_task(&self, _: &TtrpcContext, r: CreateTaskRequest) -> Res<Task> {
        let new = NewTask {
            stdio: [r.stdin, r.stdout, r.stderr],
            terminal: r.terminal,
            detach: r.detach,
        };
        let t = self.tasks.create(&r.namespace, &r.container_id, new);
        done("create task", t).map(task_msg)
    }
    fn start_task(&self, _: &TtrpcContext, r: TaskRequest) -> Res<Task> {
        done(
            "start task",
            self.tasks.start(&r.namespace, &r.container_id, &r.exec_id),
        )
        .map(task_msg)
    }
    fn get_task(&self, _: &TtrpcContext, r: TaskRequest) -> Res<Task> {
        done(
            "get task",
            self.tasks.get(&r.namespace, &r.container_id, &r.exec_id),
        )
        .map(task_msg)
    }
    fn list_tasks(&self, _: &TtrpcContext, r: ListTasksRequest) -> Res<ListTasksResponse> {
        let all = done("list tasks", self.tasks.list(&r.namespace))?;
        Ok(ListTasksResponse {
            tasks: all.into_iter().map(task_msg).collect(),
            ..Default::default()
        })
    }
    fn kill_task(&self, _: &TtrpcContext, r: KillTaskRequest) -> Res<Empty> {
        done(
            "kill",
            self.tasks
                .kill(&r.namespace, &r.container_id, &r.exec_id, r.signal, r.all),
        )
        .map(|_| Empty::default())
    }
    fn wait_task(&self, _: &TtrpcContext, r: TaskRequest) -> Res<Task> {
        done(
            "wait",
            self.tasks.wait(&r.namespace, &r.container_id, &r.exec_id),
        )
        .map(task_msg)
    }
    fn delete_task(&self, _: &TtrpcContext, r: TaskRequest) -> Res<Task> {
        done(
            "delete task",
            self.tasks.delete(&r.namespace, &r.container_id, &r.exec_id),
        )
        .map(task_msg)
    }
    fn exec_task(&self, _: &TtrpcContext, r: ExecTaskRequest) -> Res<Empty> {
        let e = NewExec {
            exec_id: r.exec_id,
            args: r.args,
            env: r.env,
            terminal: r.terminal,
            stdio: [r.stdin, r.stdout, r.stderr],
        };
        let t = self.tasks.exec(&r.namespace, &r.container_id, e);
        done("exec", t).map(|_| Empty::default())
    }
    fn pause_task(&self, _: &TtrpcContext, r: TaskRequest) -> Res<Empty> {
        done("pause", self.tasks.pause(&r.namespace, &r.container_id)).map(|_| Empty::default())
    }
    fn resume_task(&self, _: &TtrpcContext, r: TaskRequest) -> Res<Empty> {
        done("resume", self.tasks.resume(&r.namespace, &r.container_id)).map(|_| Empty::default())
    }
    fn task_pids(&self, _: &TtrpcContext, r: TaskRequest) -> Res<PidsResponse> {
        let pids = done("pids", self.tasks.pids(&r.namespace, &r.container_id))?;
        Ok(PidsResponse {
            pids,
            ..Default::default()
        })
    }
    fn task_stats(&self, _: &TtrpcContext, r: TaskRequest) -> Res<StatsResponse> {
        let (memory_usage, memory_limit, cpu_usage_ns, pids) =
            done("stats", self.tasks.stats(&r.namespace, &r.container_id))?;
        Ok(StatsResponse {
            memory_usage,
            memory_limit,
            cpu_usage_ns,
            pids,
            ..Default::default()
        })
    }
    fn update_task(&self, _: &TtrpcContext, r: UpdateTaskRequest) -> Res<Empty> {
        done(
            "update",
            self.tasks
                .update_memory(&r.namespace, &r.container_id, r.memory_limit),
        )
        .map(|_| Empty::default())
    }
    fn resize_task(&self, _: &TtrpcContext, r: ResizeTaskRequest) -> Res<Empty> {
        done(
            "resize",
            self.tasks
                .resize(&r.namespace, &r.container_id, &r.exec_id, r.width, r.height),
        )
        .map(|_| Empty::default())
    }
    fn close_task_stdin(&self, _: &TtrpcContext, r: TaskRequest) -> Res<Empty> {
        done(
            "close stdin",
            self.tasks
                .close_stdin(&r.namespace, &r.container_id, &r.exec_id),
        )
        .map(|_| Empty::default())
    }
    fn task_logs(&self, _: &TtrpcContext, r: TaskRequest) -> Res<LogsResponse> {
        let data = done("logs", self.tasks.logs(&r.namespace, &r.container_id))?;
        Ok(LogsResponse {
            data,
            ..Default::default()
        })
    }
}

impl skiff_protos::manager_ttrpc::Events for Api {
    fn poll_events(&self, _: &TtrpcContext, r: PollEventsRequest) -> Res<PollEventsResponse> {
        let timeout = std::time::Duration::from_millis(r.timeout_ms.min(60_000) as u64);
        Ok(PollEventsResponse {
            events: self.tasks.events.poll(
                crate::store::namespace(&r.namespace).map_err(ttrpc::Error::from)?,
                r.after,
                timeout,
            ),
            ..Default::default()
        })
    }
}

impl Daemon for Api {
    fn daemon_info(&self, _: &TtrpcContext, _: InfoRequest) -> Res<InfoResponse> {
        Ok(InfoResponse {
            fifo_dir: self.tasks.fifo_dir().display().to_string(),
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        })
    }
}

/// Every skiff.v1 service, for the server.
pub fn services(
    store: Arc<Store>,
    tasks: Arc<Tasks>,
) -> HashMap<String, Box<dyn ttrpc::MethodHandler + Send + Sync>> {
    let api = Arc::new(Api { store, tasks });
    let mut all = create_containers(api.clone());
    all.extend(create_images(api.clone()));
    all.extend(create_snapshots(api.clone()));
    all.extend(create_tasks(api.clone()));
    all.extend(skiff_protos::manager_ttrpc::create_events(api.clone()));
    all.extend(create_daemon(api.clone()));
    all.extend(create_content(api));
    all
}
