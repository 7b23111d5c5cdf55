//! The running app, over HTTP: JSON requests with the admin token, pages of the log, and the
//! log followed as server-sent events.

use std::time::Duration;

use fairway_dcb::{Position, Query, QueryItem, Tag};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};

/// Events asked for per page of the log (the app accepts up to 10 000).
pub const EVENT_PAGE: u64 = 1_000;
/// Documents asked for per page of a view (the app's limit).
pub const VIEW_PAGE: u64 = 1_000;

/// Which events a read is about: of any of `types` (any type when empty), carrying all of
/// `tags`; the app's `type` and `tag` parameters.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Accepted types.
    pub types: Vec<String>,
    /// Required tags.
    pub tags: Vec<Tag>,
    /// Ask for the exact bytes of payloads and metadata (`encoding=base64`) instead of
    /// their readable form.
    pub exact: bool,
}

impl Filter {
    /// The store query of the filter (what the app builds from `type` and `tag`).
    pub fn query(&self) -> Query {
        if self.types.is_empty() && self.tags.is_empty() {
            return Query::all();
        }
        QueryItem::types(self.types.clone()).with_tags(self.tags.clone()).into()
    }

    fn pairs(&self) -> Vec<(&'static str, String)> {
        let types = self.types.iter().map(|t| ("type", t.clone()));
        let encoding = self.exact.then(|| ("encoding", "base64".to_owned()));
        types.chain(self.tags.iter().map(|t| ("tag", t.as_str().to_owned()))).chain(encoding).collect()
    }
}

/// One page of `GET /admin/api/events`, its events in the admin API's JSON shape.
pub use fairway_core::app::replies::EventPage;

/// A client of one running app.
#[derive(Clone, Debug)]
pub struct Client {
    base: Url,
    http: reqwest::Client,
    token: Option<String>,
    page: u64,
}

impl Client {
    /// A client of the app at `url` (e.g. `http://127.0.0.1:8080`), sending `token` as
    /// `Authorization: Bearer <token>` when given.
    pub fn new(url: &str, token: Option<String>) -> Result<Self> {
        let base = Url::parse(url).map_err(|e| Error::Usage(format!("--url {url:?}: {e}")))?;
        match base.scheme() {
            "http" => {}
            "https" => {
                return Err(Error::Usage(format!(
                    "--url {url}: this build of fairway speaks plain HTTP only; reach the app over http:// \
                     (on loopback, or through a tunnel)"
                )));
            }
            other => return Err(Error::Usage(format!("--url {url}: {other}:// is not HTTP"))),
        }
        if base.cannot_be_a_base() {
            return Err(Error::Usage(format!("--url {url}: not a base URL")));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|source| Error::Http { url: url.to_owned(), source })?;
        Ok(Client { base, http, token: token.filter(|t| !t.is_empty()), page: EVENT_PAGE })
    }

    /// Asks for `size` events (documents: at most [`VIEW_PAGE`]) per page.
    pub fn with_page_size(mut self, size: u64) -> Self {
        self.page = size.max(1);
        self
    }

    /// Events asked for per page.
    pub fn event_page(&self) -> u64 {
        self.page
    }

    /// Documents asked for per page.
    pub fn view_page(&self) -> u64 {
        self.page.min(VIEW_PAGE)
    }

    /// The app's base URL as given.
    pub fn base(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// The URL of `segments` (each escaped) under the base, with `query`.
    pub fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut().expect("checked: a base URL").pop_if_empty().extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends a request and returns the response when its status is a success; maps
    /// connection failures and error statuses to [`Error`]s.
    pub async fn send(&self, method: Method, url: Url) -> Result<reqwest::Response> {
        let mut request = self.http.request(method, url.clone());
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|source| self.failed(&url, source))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        let message = match serde_json::from_str::<Value>(&body) {
            Ok(json) => json.get("error").and_then(Value::as_str).map_or_else(|| body.clone(), str::to_owned),
            Err(_) => body,
        };
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Error::Unauthorized { status: status.as_u16(), message }
            }
            StatusCode::NOT_FOUND => Error::NotFound { message },
            _ => Error::Api { status: status.as_u16(), message },
        })
    }

    /// Sends a request and parses its JSON answer.
    pub async fn json(&self, method: Method, segments: &[&str], query: &[(&str, String)]) -> Result<Value> {
        let url = self.url(segments, query);
        let response = self.send(method, url.clone()).await?;
        let body = response.bytes().await.map_err(|source| self.failed(&url, source))?;
        serde_json::from_slice(&body)
            .map_err(|e| Error::Protocol { url: url.to_string(), why: format!("the body is not JSON: {e}") })
    }

    /// `GET` of `segments`, as JSON.
    pub async fn get(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Value> {
        self.json(Method::GET, segments, query).await
    }

    /// Sends a request and reads its JSON answer as `T`, one of the app's reply types: an
    /// answer of another shape is a protocol error naming what does not fit.
    pub async fn reply<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<T> {
        let answer = self.json(method, segments, query).await?;
        serde_json::from_value(answer).map_err(|e| Error::Protocol {
            url: self.url(segments, &[]).to_string(),
            why: format!("the answer does not fit its reply type: {e}"),
        })
    }

    fn failed(&self, url: &Url, source: reqwest::Error) -> Error {
        if source.is_connect() {
            Error::AppDown { url: self.base().to_owned() }
        } else {
            Error::Http { url: url.to_string(), source }
        }
    }

    /// One page of the log: at most `limit` events matching `filter` from `from`
    /// (inclusive), newest first when `backwards`.
    pub async fn events_page(
        &self,
        filter: &Filter,
        from: Option<Position>,
        backwards: bool,
        limit: u64,
    ) -> Result<EventPage> {
        let mut query = filter.pairs();
        if let Some(from) = from {
            query.push(("from", from.to_string()));
        }
        if backwards {
            query.push(("backwards", "true".into()));
        }
        query.push(("limit", limit.to_string()));
        self.reply(Method::GET, &["admin", "api", "events"], &query).await
    }

    /// Follows the log from `from` (inclusive; [`Position::ZERO`]: from the start) over
    /// server-sent events.
    pub async fn follow(&self, filter: &Filter, from: Position) -> Result<EventFeed> {
        let mut query = filter.pairs();
        query.push(("from", from.to_string()));
        let url = self.url(&["admin", "api", "events", "follow"], &query);
        let response = self.send(Method::GET, url.clone()).await?;
        Ok(EventFeed { response, url, buffer: Vec::new(), data: String::new(), kind: String::new() })
    }
}

/// The log followed live: `GET /admin/api/events/follow` read as server-sent events.
#[derive(Debug)]
pub struct EventFeed {
    response: reqwest::Response,
    url: Url,
    buffer: Vec<u8>,
    data: String,
    kind: String,
}

impl EventFeed {
    /// The next event (the admin API's JSON shape); `None` when the app closed the stream.
    pub async fn next(&mut self) -> Result<Option<Value>> {
        loop {
            while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                let line = line.trim_end_matches(['\n', '\r']);
                if let Some(event) = self.line(line)? {
                    return Ok(Some(event));
                }
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.buffer.extend_from_slice(&chunk),
                Ok(None) => return Ok(None),
                Err(source) => return Err(Error::Http { url: self.url.to_string(), source }),
            }
        }
    }

    /// Takes one line of the stream; a blank line ends a message.
    fn line(&mut self, line: &str) -> Result<Option<Value>> {
        if line.is_empty() {
            let (kind, data) = (std::mem::take(&mut self.kind), std::mem::take(&mut self.data));
            if data.is_empty() {
                return Ok(None);
            }
            if kind == "error" {
                return Err(Error::FollowFailed(data));
            }
            return serde_json::from_str(&data)
                .map(Some)
                .map_err(|e| Error::Protocol { url: self.url.to_string(), why: format!("an event is not JSON: {e}") });
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "data" => {
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(value);
            }
            "event" => self.kind = value.to_owned(),
            _ => {} // comments (keep-alives), ids, retry hints
        }
        Ok(None)
    }
}
