//! skiff.v1 over ttrpc: each RPC is a thin call into [`Store`], logged when it fails.

use crate::snapshots::Kind;
use crate::store::{ContainerRecord, ImageRecord, NewContainer, Store};
use skiff_protos::manager::*;
use skiff_protos::manager_ttrpc::*;
use std::collections::HashMap;
use std::sync::Arc;
use ttrpc::TtrpcContext;

pub struct Api(pub Arc<Store>);

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
            args: r.args,
            env: r.env,
            labels: r.labels.into_iter().collect(),
            terminal: r.terminal,
            memory_limit: r.memory_limit,
        };
        done(
            "create container",
            self.0.create_container(&r.namespace, new),
        )
        .map(container_msg)
    }
    fn get_container(&self, _: &TtrpcContext, r: ContainerRequest) -> Res<Container> {
        done("get container", self.0.get_container(&r.namespace, &r.id)).map(container_msg)
    }
    fn list_containers(
        &self,
        _: &TtrpcContext,
        r: ListContainersRequest,
    ) -> Res<ListContainersResponse> {
        let all = done(
            "list containers",
            self.0.list_containers(&r.namespace, &r.label_filters),
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
            self.0.label_container(&r.namespace, &r.id, &set),
        )
        .map(container_msg)
    }
    fn delete_container(&self, _: &TtrpcContext, r: ContainerRequest) -> Res<Empty> {
        done(
            "delete container",
            self.0.delete_container(&r.namespace, &r.id),
        )
        .map(|_| Empty::default())
    }
}

impl Images for Api {
    fn import_image(&self, _: &TtrpcContext, r: ImportRequest) -> Res<ImportResponse> {
        let name = (!r.name.is_empty()).then_some(r.name.as_str());
        let images = done(
            "import",
            self.0
                .import(&r.namespace, std::path::Path::new(&r.path), name),
        )?;
        for i in &images {
            crate::log::info(&format!("imported {} ({})", i.name, i.target_digest));
        }
        Ok(ImportResponse {
            images: images.into_iter().map(image_msg).collect(),
            ..Default::default()
        })
    }
    fn get_image(&self, _: &TtrpcContext, r: ImageRequest) -> Res<Image> {
        done("get image", self.0.get_image(&r.namespace, &r.name)).map(image_msg)
    }
    fn list_images(&self, _: &TtrpcContext, r: ListImagesRequest) -> Res<ListImagesResponse> {
        let all = done("list images", self.0.list_images(&r.namespace))?;
        Ok(ListImagesResponse {
            images: all.into_iter().map(image_msg).collect(),
            ..Default::default()
        })
    }
    fn delete_image(&self, _: &TtrpcContext, r: ImageRequest) -> Res<Empty> {
        done("delete image", self.0.delete_image(&r.namespace, &r.name)).map(|_| Empty::default())
    }
}

impl Snapshots for Api {
    fn prepare(&self, _: &TtrpcContext, r: PrepareSnapshotRequest) -> Res<MountsResponse> {
        done(
            "prepare",
            self.0
                .prepare(&r.namespace, &r.key, &r.parent, Kind::Active),
        )
        .map(mounts_msg)
    }
    fn view(&self, _: &TtrpcContext, r: PrepareSnapshotRequest) -> Res<MountsResponse> {
        done(
            "view",
            self.0.prepare(&r.namespace, &r.key, &r.parent, Kind::View),
        )
        .map(mounts_msg)
    }
    fn commit(&self, _: &TtrpcContext, r: CommitSnapshotRequest) -> Res<Empty> {
        done("commit", self.0.commit(&r.namespace, &r.name, &r.key)).map(|_| Empty::default())
    }
    fn remove(&self, _: &TtrpcContext, r: SnapshotRequest) -> Res<Empty> {
        done(
            "remove snapshot",
            self.0.remove_snapshot(&r.namespace, &r.key),
        )
        .map(|_| Empty::default())
    }
    fn mounts(&self, _: &TtrpcContext, r: SnapshotRequest) -> Res<MountsResponse> {
        done("mounts", self.0.mounts(&r.namespace, &r.key)).map(mounts_msg)
    }
    fn usage(&self, _: &TtrpcContext, r: SnapshotRequest) -> Res<UsageResponse> {
        let (size, inodes) = done("usage", self.0.usage(&r.namespace, &r.key))?;
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
        let all = done("list snapshots", self.0.list_snapshots(&r.namespace))?;
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
            snapshotter: self.0.snapshots.driver.name().into(),
            ..Default::default()
        })
    }
}

impl Content for Api {
    fn info(&self, _: &TtrpcContext, r: ContentRequest) -> Res<ContentInfo> {
        let (digest, size, media_type, created_at) =
            done("content info", self.0.content_info(&r.digest))?;
        Ok(ContentInfo {
            digest,
            size,
            media_type,
            created_at,
            ..Default::default()
        })
    }
    fn list_content(&self, _: &TtrpcContext, _: ListContentRequest) -> Res<ListContentResponse> {
        let all = done("list content", self.0.list_content())?;
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

/// Every skiff.v1 service, for the server.
pub fn services(store: Arc<Store>) -> HashMap<String, Box<dyn ttrpc::MethodHandler + Send + Sync>> {
    let api = Arc::new(Api(store));
    let mut all = create_containers(api.clone());
    all.extend(create_images(api.clone()));
    all.extend(create_snapshots(api.clone()));
    all.extend(create_content(api));
    all
}
