//! `pusher:signin`: user authentication, the user's online status and its watchlist (spec §5).

use super::session::{Session, SignedIn};
use crate::{
    auth,
    protocol::{
        ChannelName, SocketError, UserId,
        frames::{self, Presence},
        user,
    },
};

impl Session {
    pub(super) async fn signin(
        &mut self,
        auth_field: &str,
        user_data: &str,
    ) -> Result<(), SocketError> {
        let app = self.conn.app.clone();
        let refuse = |reason: String| {
            if app.require_authorization {
                SocketError::Unauthorized(reason)
            } else {
                SocketError::SigninFailed(reason)
            }
        };
        let signed = auth::signin_string_to_sign(&self.conn.socket_id.to_string(), user_data);
        auth::check_socket_auth(&app.key, &app.secret, auth_field, &signed)
            .map_err(|error| refuse(SocketError::from(error).to_string()))?;
        let user = user::parse_user_data(user_data)
            .map_err(|reason| refuse(format!("invalid user_data: {reason}")))?;
        if let Some(current) = &self.signed_in {
            if current.user_id != user.id {
                return Err(refuse(format!("already signed in as {}", current.user_id)));
            }
            // Signing in again as the same user only repeats the confirmation.
            self.send(frames::signin_success(user_data));
            return Ok(());
        }
        let went_online = match self.context.adapter.sign_in(&user.id, &self.conn).await {
            Ok(went_online) => went_online,
            Err(error) => {
                tracing::warn!(app = %app.id, %error, "sign-in failed");
                return Err(refuse("sign-in is unavailable; try again".into()));
            }
        };
        self.authorized = true;
        self.send(frames::signin_success(user_data));
        let mut signed_in = SignedIn {
            user_id: user.id.clone(),
            user_info: user.user_info,
            watching: Vec::new(),
        };
        let mut truncated = false;
        if app.watchlist_events && !user.watchlist.is_empty() {
            let limit = app.limits.max_watchlist;
            let mut watchlist = user.watchlist;
            truncated = watchlist.len() > limit;
            watchlist.truncate(limit);
            self.watch(&mut signed_in, &watchlist).await;
        }
        self.signed_in = Some(signed_in);
        if went_online && app.watchlist_events {
            self.announce(&user.id, Presence::Online).await;
        }
        if truncated {
            self.reply_error(SocketError::WatchlistTruncated {
                limit: app.limits.max_watchlist,
            });
        }
        Ok(())
    }

    /// Starts listening for the watched users' changes, then reports their current status (spec §5.4).
    async fn watch(&self, signed_in: &mut SignedIn, watchlist: &[UserId]) {
        let registry = self.context.adapter.registry();
        for user_id in watchlist {
            let channel = ChannelName::watchlist_of(user_id.as_str());
            registry.join_internal(&channel, &self.conn);
            signed_in.watching.push(channel);
        }
        let app_id = &self.conn.app.id;
        let online = match self.context.adapter.online(app_id, watchlist).await {
            Ok(online) => online,
            Err(error) => {
                tracing::warn!(app = %app_id, %error, "watchlist status failed");
                return;
            }
        };
        let (mut up, mut down) = (Vec::new(), Vec::new());
        for (user_id, is_online) in watchlist.iter().zip(online) {
            if is_online {
                up.push(user_id.as_str())
            } else {
                down.push(user_id.as_str())
            }
        }
        self.send(frames::watchlist_events(&[
            (Presence::Online, up),
            (Presence::Offline, down),
        ]));
    }

    /// Undoes a sign-in when the socket goes away.
    pub(super) async fn sign_out(&self, signed_in: SignedIn) {
        let app = &self.conn.app;
        let registry = self.context.adapter.registry();
        for channel in &signed_in.watching {
            registry.unsubscribe(&app.id, channel, self.conn.socket_id);
        }
        match self
            .context
            .adapter
            .sign_out(&app.id, &signed_in.user_id, self.conn.socket_id)
            .await
        {
            Ok(true) if app.watchlist_events => {
                self.announce(&signed_in.user_id, Presence::Offline).await
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(app = %app.id, %error, "sign-out failed"),
        }
    }
}
