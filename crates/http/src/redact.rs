//! URLs fit for logs and error messages.

use url::Url;

/// The URL without its query, fragment or credentials: some upstreams take
/// keys in the query (`?key=`), and none of it is needed to tell which
/// upstream failed.
pub fn redacted_url(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    // Both fail only for URLs that cannot have credentials at all.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_query_and_credentials() {
        let url =
            Url::parse("https://user:pw@example.com/v1beta/models/x:generate?key=AIzaSecret#frag")
                .unwrap();
        assert_eq!(
            redacted_url(&url),
            "https://example.com/v1beta/models/x:generate"
        );
    }
}
