use crate::rows::{self, micros};
use crate::{Store, StoreError};
use custody_core::{AuditDraft, AuditEvent, Name, NewProject, Project, ProjectId};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

impl Store {
    /// Creates a project; its name must be unused.
    pub async fn create_project(
        &self,
        draft: AuditDraft,
        new: NewProject,
        created_by: String,
    ) -> Result<(Project, AuditEvent), StoreError> {
        self.write(draft, move |conn, draft| {
            let (new, created_by) = (new.clone(), created_by.clone());
            Box::pin(async move {
                if project_by_name(&mut *conn, &new.name).await?.is_some() {
                    return Err(StoreError::conflict("name", format!("a project named `{}` exists", new.name)));
                }
                let project = Project {
                    id: ProjectId::new(),
                    name: new.name,
                    description: new.description,
                    created_by,
                    created_at: custody_core::now(),
                };
                sqlx::query(
                    "INSERT INTO projects (id, name, description, created_by, created_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(project.id.to_string())
                .bind(project.name.as_str())
                .bind(&project.description)
                .bind(&project.created_by)
                .bind(micros(project.created_at))
                .execute(&mut *conn)
                .await?;
                draft.resource = custody_core::ResourceRef::new("project", &project.name);
                Ok(project)
            })
        })
        .await
    }

    /// The project named `name`.
    pub async fn project(&self, name: &Name) -> Result<Project, StoreError> {
        if let Some(p) = self.projects.get(name) {
            return Ok(p);
        }
        let mut conn = self.read.acquire().await?;
        let project = project_by_name(&mut conn, name).await?.ok_or_else(|| StoreError::not_found("project", name))?;
        self.projects.put(&project);
        Ok(project)
    }

    /// The project with id `id`.
    pub async fn project_by_id(&self, id: ProjectId) -> Result<Project, StoreError> {
        sqlx::query("SELECT * FROM projects WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await?
            .as_ref()
            .map(project_from_row)
            .transpose()?
            .ok_or_else(|| StoreError::not_found("project", id))
    }

    /// All projects, by name.
    pub async fn projects(&self) -> Result<Vec<Project>, StoreError> {
        sqlx::query("SELECT * FROM projects ORDER BY name")
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(project_from_row)
            .collect()
    }
}

pub(crate) async fn project_by_name(conn: &mut AnyConnection, name: &Name) -> Result<Option<Project>, StoreError> {
    sqlx::query("SELECT * FROM projects WHERE name = $1")
        .bind(name.as_str())
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(project_from_row)
        .transpose()
}

pub(crate) fn project_from_row(row: &AnyRow) -> Result<Project, StoreError> {
    Ok(Project {
        id: rows::parsed(row, "id")?,
        name: rows::parsed(row, "name")?,
        description: rows::text(row, "description")?,
        created_by: rows::text(row, "created_by")?,
        created_at: rows::time(row, "created_at")?,
    })
}

/// Projects already read, by name. A project row is never updated or deleted, so a project
/// read once, committed, is what every later read of its name returns, on any replica: nothing
/// here needs invalidating (unlike `cache.rs`). Only projects found are kept; a name not found
/// is asked again, since it may be created at any time.
#[derive(Default)]
pub(crate) struct KnownProjects {
    by_name: std::sync::Mutex<std::collections::HashMap<Name, Project>>,
}

/// Projects kept before [`KnownProjects`] starts over.
const MAX_KNOWN_PROJECTS: usize = 4096;

impl KnownProjects {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<Name, Project>> {
        // The map only ever holds committed rows, so a panic elsewhere cannot make it wrong.
        self.by_name.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, name: &Name) -> Option<Project> {
        self.lock().get(name).cloned()
    }

    fn put(&self, project: &Project) {
        let mut map = self.lock();
        if map.len() >= MAX_KNOWN_PROJECTS {
            map.clear();
        }
        map.insert(project.name.clone(), project.clone());
    }
}
