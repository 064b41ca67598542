//! `klab new`: a scenario skeleton from `templates/scenario.yaml.tera`, which lints clean.

use super::args::NewArgs;
use super::output::{GREEN, paint};
use super::{Failure, Outcome};
use crate::exit;
use crate::scenario::catalog::Catalog;

pub fn run(cat: &Catalog, a: &NewArgs) -> Outcome {
    let ok = !a.id.is_empty()
        && a.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !a.id.starts_with('-');
    if !ok {
        return Err(Failure::new(exit::USAGE, format!("`{}` is not a drill id", a.id))
            .help("use lowercase letters, digits and dashes, e.g. `dns-outage`"));
    }
    let tpl = cat
        .template("scenario.yaml.tera")
        .ok_or_else(|| Failure::new(exit::FAILED, "template scenario.yaml.tera is missing from templates/"))?;
    let mut ctx = tera::Context::new();
    ctx.insert("id", &a.id);
    let text = tera::Tera::default()
        .render_str(tpl, &ctx, false)
        .map_err(|e| Failure::new(exit::FAILED, format!("cannot render the scenario template: {e}")))?;
    let path = a.dir.join(format!("{}.yaml", a.id));
    if path.exists() && !a.force {
        return Err(Failure::new(exit::FAILED, format!("{} already exists", path.display()))
            .help("pass --force to overwrite it"));
    }
    std::fs::create_dir_all(&a.dir)
        .map_err(|e| Failure::new(exit::FAILED, format!("cannot create {}: {e}", a.dir.display())))?;
    std::fs::write(&path, text)
        .map_err(|e| Failure::new(exit::FAILED, format!("cannot write {}: {e}", path.display())))?;
    anstream::println!("{} {}", paint(GREEN, "created"), path.display());
    anstream::println!(
        "next: edit it, then `klab lint {}` and `klab render {} --catalog {}`",
        path.display(),
        a.id,
        a.dir.display()
    );
    Ok(exit::OK)
}
