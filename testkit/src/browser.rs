//! A real browser for the HTML reports: Debian's chromium headless, every request sent through
//! a local proxy that records it, a DOM dump and a screenshot. `.ci/run` installs chromium and
//! sets KLAB_REQUIRE_BROWSER=1, so there a missing browser fails instead of skipping.

use std::io::Read;
use std::path::Path;

/// The browser, or `None` with the reason printed (a failure where the browser is required).
pub fn chromium() -> Option<&'static str> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| std::process::Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()));
    match found {
        Some(b) => {
            eprintln!("tier: real browser ({b} headless)");
            Some(b)
        }
        None => {
            if std::env::var_os("CI").is_some() || std::env::var_os("KLAB_REQUIRE_BROWSER").is_some() {
                panic!("chromium is required here (.ci/run installs Debian's chromium)");
            }
            eprintln!("tier: real browser — skipped: no chromium on PATH (`apt-get install chromium`)");
            None
        }
    }
}

pub struct Rendered {
    pub dom: String,
    /// Distinct colours (up to 65) and pixels of the screenshot.
    pub distinct: usize,
    pub total: usize,
    /// What the page asked the network for (the browser's own services left out).
    pub requests: Vec<String>,
}

fn common(c: &mut std::process::Command, profile: &Path, port: u16) {
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--no-first-run",
        "--disable-extensions",
        "--no-pings",
        "--disable-domain-reliability",
        "--disable-client-side-phishing-detection",
        "--disable-features=OptimizationHints,MediaRouter,Translate,NetworkTimeServiceQuerying,AutofillServerCommunication",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg(format!("--proxy-server=http://127.0.0.1:{port}"))
    .arg("--proxy-bypass-list=<-loopback>");
}

/// Opens `page` (a file) in the browser: its DOM, a 1200×1600 screenshot, and its requests.
pub fn render(chromium: &str, page: &Path, work: &Path) -> Rendered {
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = proxy.local_addr().unwrap().port();
    proxy.set_nonblocking(true).unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen2 = seen.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let watcher = std::thread::spawn(move || {
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            match proxy.accept() {
                Ok((mut s, _)) => {
                    let mut buf = [0u8; 512];
                    let n = s.read(&mut buf).unwrap_or(0);
                    seen2.lock().unwrap().push(String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or("").into());
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
    });
    let stem = page.file_stem().and_then(|s| s.to_str()).unwrap_or("page");
    let profile = work.join(format!("chromium-profile-{stem}"));
    let shot = work.join(format!("{stem}.png"));
    let mut dump = std::process::Command::new(chromium);
    common(&mut dump, &profile, port);
    let out = dump.arg("--dump-dom").arg(format!("file://{}", page.display())).output().unwrap();
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut cap = std::process::Command::new(chromium);
    common(&mut cap, &profile, port);
    let out = cap
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1200,1600")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(shot.exists(), "no screenshot: {}", String::from_utf8_lossy(&out.stderr));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    watcher.join().unwrap();
    let (distinct, total) = png_colours(&shot);
    let requests = page_requests(&seen.lock().unwrap());
    Rendered { dom, distinct, total, requests }
}

impl Rendered {
    /// The page is not blank and asked the network for nothing.
    pub fn assert_shown_offline(&self) {
        assert!(
            self.total > 100_000 && self.distinct > 8,
            "the screenshot is blank: {} colours in {} pixels",
            self.distinct,
            self.total
        );
        assert!(self.requests.is_empty(), "the page made requests: {:?}", self.requests);
    }
}

/// The control: a page that does load something is caught by the same kind of proxy.
pub fn control_is_caught(chromium: &str, work: &Path) {
    let bad = work.join("bad.html");
    std::fs::write(&bad, r#"<html><body><img src="http://klab-report-test.invalid/x.png">x</body></html>"#).unwrap();
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = proxy.local_addr().unwrap().port();
    proxy.set_nonblocking(true).unwrap();
    let mut control = std::process::Command::new(chromium);
    common(&mut control, &work.join("chromium-profile-control"), port);
    let mut child = control
        .arg("--dump-dom")
        .arg(format!("file://{}", bad.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut caught = Vec::new();
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(60) {
        if let Ok((mut s, _)) = proxy.accept() {
            let mut buf = [0u8; 512];
            let n = s.read(&mut buf).unwrap_or(0);
            caught.push(String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or("").to_string());
            if !page_requests(&caught).is_empty() {
                break;
            }
        }
        if child.try_wait().ok().flatten().is_some() && proxy.accept().is_err() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        page_requests(&caught).iter().any(|r| r.contains("klab-report-test.invalid")),
        "the proxy must see a page's requests: {caught:?}"
    );
}
/// Requests other than the browser's own services (time, component updates, sign-in), which
/// Chromium sends however its background networking is configured.
pub fn page_requests(seen: &[String]) -> Vec<String> {
    const BROWSER_SERVICES: &[&str] = &["google.com", "googleapis.com", "gvt1.com", "gstatic.com"];
    seen.iter()
        .filter(|r| {
            let target = r.split_whitespace().nth(1).unwrap_or_default();
            let host = target.trim_start_matches("http://").trim_start_matches("https://");
            let host = host.split(['/', ':']).next().unwrap_or_default();
            !BROWSER_SERVICES.iter().any(|d| host == *d || host.ends_with(&format!(".{d}")))
        })
        .cloned()
        .collect()
}

/// Distinct RGB(A) values and pixel count of an 8-bit PNG (enough to tell a blank page).
pub fn png_colours(path: &Path) -> (usize, usize) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let (mut pos, mut idat, mut width, mut height, mut channels) = (8, Vec::new(), 0usize, 0usize, 4usize);
    while pos + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = &bytes[pos + 4..pos + 8];
        let data = &bytes[pos + 8..pos + 8 + len];
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
                height = u32::from_be_bytes(data[4..8].try_into().unwrap()) as usize;
                channels = match data[9] {
                    2 => 3,
                    6 => 4,
                    0 => 1,
                    4 => 2,
                    t => panic!("colour type {t}"),
                };
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        pos += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..]).read_to_end(&mut raw).unwrap();
    // Filter bytes change values but not whether a picture has content: count distinct
    // unfiltered scanline bytes per pixel position as a proxy.
    let stride = width * channels + 1;
    let mut colours = std::collections::HashSet::new();
    for y in 0..height {
        let line = &raw[y * stride + 1..(y + 1) * stride];
        for px in line.chunks(channels) {
            colours.insert(px.to_vec());
            if colours.len() > 64 {
                return (colours.len(), width * height);
            }
        }
    }
    (colours.len(), width * height)
}
