//! English and German texts of the web pages and of the mails they send.
//!
//! Every text is a field of [`Texts`], so a missing translation is a compile error, not a
//! blank on a page. Texts with values use numbered placeholders (`{0}`, `{1}`), filled by
//! [`fill`], since the two languages order them differently.

/// A language of the pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    De,
}

impl Lang {
    /// The BCP 47 code (`en`, `de`).
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
        }
    }

    /// The language's own name, for the switch link.
    pub fn name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::De => "Deutsch",
        }
    }

    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::De,
            Lang::De => Lang::En,
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        match code.trim().to_ascii_lowercase().as_str() {
            "en" => Some(Lang::En),
            "de" => Some(Lang::De),
            _ => None,
        }
    }

    /// The best of our languages for an `Accept-Language` header (RFC 9110 section 12.5.4):
    /// the highest `q` among `en*` and `de*`; English when neither is acceptable.
    pub fn from_accept_language(header: &str) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for item in header.split(',') {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|v| v.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or_default();
            let Some(lang) = Lang::parse(primary) else { continue };
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::En, |(_, l)| l)
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::En => &EN,
            Lang::De => &DE,
        }
    }
}

/// Replaces `{0}`, `{1}`, ... in `template` with `values`.
pub fn fill(template: &str, values: &[&str]) -> String {
    let mut out = template.to_string();
    for (i, v) in values.iter().enumerate() {
        out = out.replace(&format!("{{{i}}}"), v);
    }
    out
}

macro_rules! texts {
    ($($key:ident: $en:expr, $de:expr;)*) => {
        /// All texts of one language.
        pub struct Texts { $(pub $key: &'static str,)* }
        pub static EN: Texts = Texts { $($key: $en,)* };
        pub static DE: Texts = Texts { $($key: $de,)* };
    };
}

texts! {
    brand_tagline: "mail", "Mail";
    nav_label: "Main menu", "Hauptmenü";
    nav_settings: "Mail settings", "Einstellungen";
    nav_account: "Account", "Konto";
    nav_password: "Password", "Passwort";
    nav_app_passwords: "App passwords", "App-Passwörter";
    nav_admin: "Administration", "Verwaltung";
    log_out: "Log out", "Abmelden";
    footer: "postamt – your mail server", "postamt – Ihr Mailserver";
    back_home: "Back to the start page", "Zurück zur Startseite";

    err_not_found: "This page does not exist.", "Diese Seite gibt es nicht.";
    err_forbidden: "You are not allowed to do this.", "Dafür fehlt Ihnen die Berechtigung.";
    err_csrf: "This form has expired or did not come from this site. Please reload the page and try again.",
        "Dieses Formular ist abgelaufen oder stammt nicht von dieser Seite. Bitte laden Sie die Seite neu und versuchen Sie es noch einmal.";
    err_too_many: "Too many requests. Please wait a while and try again.",
        "Zu viele Anfragen. Bitte warten Sie eine Weile und versuchen Sie es dann noch einmal.";
    err_insecure: "Passwords are only accepted over an encrypted connection (https).",
        "Passwörter werden nur über eine verschlüsselte Verbindung (https) angenommen.";
    err_temporary: "The server cannot answer right now. Please try again in a moment.",
        "Der Server kann gerade nicht antworten. Bitte versuchen Sie es gleich noch einmal.";
    err_internal: "Something went wrong on the server. The administrator can find details in the log.",
        "Auf dem Server ist etwas schiefgegangen. Details stehen für die Administration im Protokoll.";

    login_title: "Log in", "Anmelden";
    field_address: "Mail address", "E-Mail-Adresse";
    field_password: "Password", "Passwort";
    login_button: "Log in", "Anmelden";
    login_failed: "Wrong address or password.", "Adresse oder Passwort falsch.";
    forgot_link: "Forgot your password?", "Passwort vergessen?";
    logged_out: "You are logged out.", "Sie sind abgemeldet.";

    settings_title: "Mail client settings", "Einstellungen für Mailprogramme";
    settings_lead: "Enter these settings in your mail program (Thunderbird, Outlook, Apple Mail, K-9 Mail, …). Many programs find them on their own once you enter your address.",
        "Tragen Sie diese Einstellungen in Ihr Mailprogramm ein (Thunderbird, Outlook, Apple Mail, K-9 Mail, …). Viele Programme finden sie selbst, sobald Sie Ihre Adresse eingeben.";
    incoming_imap: "Incoming mail: IMAP (recommended)", "Posteingang: IMAP (empfohlen)";
    imap_hint: "Mail stays on the server: every device sees the same folders and read marks.",
        "Die Mails bleiben auf dem Server: alle Geräte sehen dieselben Ordner und Lesemarkierungen.";
    incoming_pop3: "Incoming mail: POP3", "Posteingang: POP3";
    pop3_hint: "Downloads the inbox to one device, which usually removes it from the server.",
        "Lädt den Posteingang auf ein Gerät herunter, das ihn meist vom Server löscht.";
    outgoing_smtp: "Outgoing mail: SMTP", "Postausgang: SMTP";
    smtp_hint: "For sending, with both IMAP and POP3. Authentication: normal password, with the same user name.",
        "Zum Senden, für IMAP wie POP3. Authentifizierung: normales Passwort, mit demselben Benutzernamen.";
    protocol_disabled: "This access is switched off for your account.", "Dieser Zugang ist für Ihr Konto abgeschaltet.";
    not_offered: "Not offered by this server.", "Wird von diesem Server nicht angeboten.";
    col_server: "Server", "Server";
    col_port: "Port", "Port";
    col_security: "Security", "Verschlüsselung";
    col_username: "User name", "Benutzername";
    password_heading: "Password", "Passwort";
    password_hint: "Your account's password works, but better give every device its own app password, which you can revoke alone:",
        "Ihr Kontopasswort funktioniert, aber besser bekommt jedes Gerät ein eigenes App-Passwort, das Sie einzeln widerrufen können:";
    downloads_heading: "Automatic setup", "Automatische Einrichtung";
    downloads_hint: "Files that set up a mail program for you: the Thunderbird configuration, and a profile for iPhone, iPad and Mac (it asks for the password when installed).",
        "Dateien, die ein Mailprogramm für Sie einrichten: die Thunderbird-Konfiguration und ein Profil für iPhone, iPad und Mac (es fragt bei der Installation nach dem Passwort).";
    download_thunderbird: "Thunderbird configuration", "Thunderbird-Konfiguration";
    download_apple: "Apple profile (.mobileconfig)", "Apple-Profil (.mobileconfig)";

    account_title: "Your account", "Ihr Konto";
    quota_heading: "Storage", "Speicherplatz";
    quota_used_of: "{0} of {1} used", "{0} von {1} belegt";
    quota_used_unlimited: "{0} used (no limit)", "{0} belegt (keine Grenze)";
    quota_messages: "{0} messages", "{0} Nachrichten";
    addresses_heading: "Your addresses", "Ihre Adressen";
    primary_address: "Address", "Adresse";
    alias_address: "Also", "Auch";
    catch_all_hint: "(every other address at {0})", "(alle anderen Adressen bei {0})";
    recovery_heading: "Recovery address", "Adresse für die Wiederherstellung";
    recovery_hint: "If you forget your password, a link to set a new one is sent here. Use an address at another provider. Changing it needs your current password.",
        "Wenn Sie Ihr Passwort vergessen, wird hierhin ein Link zum Setzen eines neuen geschickt. Nehmen Sie eine Adresse bei einem anderen Anbieter. Zum Ändern ist Ihr aktuelles Passwort nötig.";
    field_recovery: "Recovery address (empty: none)", "Adresse für die Wiederherstellung (leer: keine)";
    field_current_password: "Current password", "Aktuelles Passwort";
    recovery_saved: "The recovery address is saved.", "Die Adresse für die Wiederherstellung ist gespeichert.";
    recovery_invalid: "That is not a usable mail address (it must not be the account's own address).",
        "Das ist keine brauchbare E-Mail-Adresse (sie darf nicht die Adresse dieses Kontos sein).";
    wrong_current_password: "The current password is wrong.", "Das aktuelle Passwort ist falsch.";
    save: "Save", "Speichern";

    password_title: "Change password", "Passwort ändern";
    field_new_password: "New password", "Neues Passwort";
    field_repeat_password: "New password again", "Neues Passwort wiederholen";
    change_password_button: "Change password", "Passwort ändern";
    password_change_effect: "Changing the password signs you out everywhere else. App passwords keep working.",
        "Nach der Änderung sind Sie überall sonst abgemeldet. App-Passwörter funktionieren weiter.";
    password_changed: "Your password is changed.", "Ihr Passwort ist geändert.";
    rules_intro: "A good password:", "Ein gutes Passwort:";
    rule_length: "has at least {0} characters – a few words in a row are easy to remember",
        "hat mindestens {0} Zeichen – ein paar Wörter hintereinander merkt man sich leicht";
    rule_address: "is not your mail address", "ist nicht Ihre E-Mail-Adresse";
    rule_common: "is not a common password such as “password123”", "ist kein verbreitetes Passwort wie „passwort123“";
    weak_short: "The new password is too short: it needs at least {0} characters.",
        "Das neue Passwort ist zu kurz: es braucht mindestens {0} Zeichen.";
    weak_long: "The new password is too long.", "Das neue Passwort ist zu lang.";
    weak_address: "The new password must not be the mail address.", "Das neue Passwort darf nicht die E-Mail-Adresse sein.";
    weak_common: "The new password is too common; it would be guessed quickly.",
        "Das neue Passwort ist zu verbreitet und wäre schnell erraten.";
    weak_mismatch: "The two new passwords differ.", "Die beiden neuen Passwörter unterscheiden sich.";

    app_passwords_title: "App passwords", "App-Passwörter";
    app_passwords_lead: "Give each mail program or device its own password. It works for IMAP, POP3 and sending (SMTP), not for these pages, and you can revoke it alone when a device is lost.",
        "Geben Sie jedem Mailprogramm und Gerät ein eigenes Passwort. Es gilt für IMAP, POP3 und das Senden (SMTP), nicht für diese Seiten, und lässt sich einzeln widerrufen, wenn ein Gerät verloren geht.";
    app_password_new_heading: "New app password", "Neues App-Passwort";
    field_label: "Name", "Name";
    label_placeholder: "e.g. Phone", "z. B. Handy";
    create: "Create", "Erstellen";
    app_password_created: "App password for “{0}”", "App-Passwort für „{0}“";
    app_password_shown_once: "Enter it in the mail program now, as password with your mail address as user name. It is shown only this once.",
        "Tragen Sie es jetzt im Mailprogramm als Passwort ein, mit Ihrer E-Mail-Adresse als Benutzername. Es wird nur dieses eine Mal angezeigt.";
    app_passwords_existing: "Your app passwords", "Ihre App-Passwörter";
    app_passwords_none: "None yet.", "Noch keine.";
    col_created: "Created", "Erstellt";
    col_last_used: "Last used", "Zuletzt benutzt";
    never: "never", "nie";
    revoke: "Revoke", "Widerrufen";
    app_password_revoked: "The app password is revoked.", "Das App-Passwort ist widerrufen.";
    unnamed_device: "Device", "Gerät";

    forgot_title: "Forgot password", "Passwort vergessen";
    forgot_lead: "Enter your mail address. If the account has a recovery address, a link to set a new password is sent there; it works once, for one hour.",
        "Geben Sie Ihre E-Mail-Adresse ein. Wenn das Konto eine Adresse für die Wiederherstellung hat, geht dorthin ein Link zum Setzen eines neuen Passworts; er gilt einmal, eine Stunde lang.";
    forgot_button: "Send link", "Link schicken";
    forgot_sent: "If this address has an account with a recovery address, a link is on its way there. Check that mailbox (also its spam folder).",
        "Wenn zu dieser Adresse ein Konto mit einer Adresse für die Wiederherstellung gehört, ist ein Link dorthin unterwegs. Sehen Sie in dem Postfach nach (auch im Spam-Ordner).";
    forgot_no_recovery: "No recovery address? Your mail administrator can set a new password for you.",
        "Keine Adresse für die Wiederherstellung? Die Administration Ihres Mailservers kann Ihnen ein neues Passwort setzen.";
    back_to_login: "Back to log in", "Zurück zur Anmeldung";
    reset_title: "Set a new password", "Neues Passwort setzen";
    reset_lead: "New password for {0}:", "Neues Passwort für {0}:";
    reset_button: "Set password", "Passwort setzen";
    reset_invalid: "This link is not valid (any more): it works only once and only for one hour.",
        "Dieser Link ist (nicht mehr) gültig: er funktioniert nur einmal und nur eine Stunde lang.";
    forgot_again: "Ask for a new link", "Einen neuen Link anfordern";
    reset_done: "Your new password is set. Log in with it.", "Ihr neues Passwort ist gesetzt. Melden Sie sich damit an.";
    reset_mail_subject: "Reset the password of {0}", "Passwort von {0} zurücksetzen";
    reset_mail_body: "Hello,\n\nsomeone (from the address {2}) asked to reset the password of the mail account\n{0} at {1}.\n\nTo set a new password, open this link within {4} minutes:\n\n{3}\n\nThe link works only once. If you did not ask for this, ignore this mail:\nyour password stays as it is.\n\n-- \npostamt on {1}\n",
        "Hallo,\n\njemand (von der Adresse {2}) möchte das Passwort des E-Mail-Kontos\n{0} bei {1} zurücksetzen.\n\nUm ein neues Passwort zu setzen, öffnen Sie innerhalb von {4} Minuten diesen Link:\n\n{3}\n\nDer Link funktioniert nur einmal. Wenn Sie das nicht angefordert haben, ignorieren Sie\ndiese Mail: Ihr Passwort bleibt, wie es ist.\n\n-- \npostamt auf {1}\n";

    admin_accounts: "Accounts", "Konten";
    admin_aliases: "Aliases", "Aliasse";
    admin_domains: "Domains", "Domains";
    admin_queue: "Outbound queue", "Warteschlange";
    admin_done_added: "Added.", "Hinzugefügt.";
    admin_done_deleted: "Deleted.", "Gelöscht.";
    admin_done_saved: "Saved.", "Gespeichert.";
    admin_done_retry: "The message will be tried again right away.", "Die Nachricht wird sofort erneut versucht.";
    admin_add_domain: "Add a domain", "Domain hinzufügen";
    field_domain: "Domain", "Domain";
    add: "Add", "Hinzufügen";
    delete: "Delete", "Löschen";
    admin_no_domains: "No domains yet: add one first.", "Noch keine Domains: fügen Sie zuerst eine hinzu.";
    admin_dns_records: "DNS records", "DNS-Einträge";
    admin_dns_for: "DNS records for {0}", "DNS-Einträge für {0}";
    admin_dns_hint: "Publish these at your DNS provider. {0} also needs an A (and AAAA) record and a matching reverse (PTR) record.",
        "Tragen Sie diese bei Ihrem DNS-Anbieter ein. {0} braucht außerdem einen A- (und AAAA-)Eintrag und einen passenden Reverse-Eintrag (PTR).";
    admin_zone_file: "As zone file", "Als Zonendatei";
    col_name: "Name", "Name";
    col_type: "Type", "Typ";
    col_value: "Value", "Wert";
    admin_new_account: "New account", "Neues Konto";
    field_quota: "Quota", "Speichergrenze";
    quota_hint: "e.g. 500M or 2G; empty for no limit", "z. B. 500M oder 2G; leer für keine Grenze";
    field_admin_role: "Administrator", "Administration";
    field_enabled: "Enabled (can log in and receive mail)", "Aktiv (kann sich anmelden und Mail empfangen)";
    col_access: "Access", "Zugang";
    unlimited: "no limit", "keine Grenze";
    disabled: "disabled", "gesperrt";
    admin_settings: "Settings", "Einstellungen";
    admin_usage: "Uses {0} in {1} messages.", "Belegt {0} in {1} Nachrichten.";
    admin_set_password: "Set a new password", "Neues Passwort setzen";
    admin_delete_account: "Delete account", "Konto löschen";
    admin_delete_warning: "Deletes the account with all its mail, folders and aliases. This cannot be undone.",
        "Löscht das Konto mit allen Mails, Ordnern und Aliassen. Das lässt sich nicht rückgängig machen.";
    admin_confirm_delete: "Yes, delete this account and all its mail", "Ja, dieses Konto mit allen Mails löschen";
    admin_self_lockout: "You cannot disable, demote or delete the account you are signed in with.",
        "Das Konto, mit dem Sie angemeldet sind, können Sie nicht sperren, herabstufen oder löschen.";
    admin_new_alias: "New alias", "Neuer Alias";
    admin_alias_hint: "An alias delivers into an account's inbox. “@example.org” is the catch-all: every address of the domain nobody else has.",
        "Ein Alias stellt in den Posteingang eines Kontos zu. „@example.org“ fängt alle Adressen der Domain auf, die sonst niemand hat.";
    field_alias: "Alias", "Alias";
    field_target: "Account", "Konto";
    catch_all: "catch-all", "Sammeladresse";
    admin_no_aliases: "No aliases yet.", "Noch keine Aliasse.";
    queue_empty: "The queue is empty: no mail is waiting for other servers.",
        "Die Warteschlange ist leer: keine Mail wartet auf andere Server.";
    queue_sender: "Sender", "Absender";
    queue_recipients: "Recipients", "Empfänger";
    queue_size: "Size", "Größe";
    queue_next: "Next attempt", "Nächster Versuch";
    queue_attempts: "Attempts", "Versuche";
    queue_retry: "Retry now", "Jetzt versuchen";
    queue_pending: "waiting", "wartet";
    queue_delivered: "delivered", "zugestellt";
    queue_failed: "failed", "gescheitert";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language() {
        assert_eq!(Lang::from_accept_language("de-DE,de;q=0.9,en;q=0.8"), Lang::De);
        assert_eq!(Lang::from_accept_language("en-US,en;q=0.9,de;q=0.8"), Lang::En);
        assert_eq!(Lang::from_accept_language("fr-FR,fr;q=0.9,de;q=0.5"), Lang::De);
        assert_eq!(Lang::from_accept_language("fr"), Lang::En);
        assert_eq!(Lang::from_accept_language("de;q=0"), Lang::En);
        assert_eq!(Lang::from_accept_language(""), Lang::En);
    }

    #[test]
    fn placeholders() {
        assert_eq!(fill("{1} of {0}", &["a", "b"]), "b of a");
        // Both languages use the same placeholders in each text.
        let count = |s: &str| (0..6).filter(|i| s.contains(&format!("{{{i}}}"))).count();
        for (en, de) in [
            (EN.reset_mail_body, DE.reset_mail_body),
            (EN.quota_used_of, DE.quota_used_of),
            (EN.admin_usage, DE.admin_usage),
            (EN.rule_length, DE.rule_length),
        ] {
            assert_eq!(count(en), count(de), "{en}");
        }
    }
}
