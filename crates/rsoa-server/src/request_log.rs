//! Request and response logging, as PySOA's server does it: each job's request and response, their sensitive
//! values censored, at `request_log_success_level`, or at `request_log_error_level` when the response has errors.
//!
//! Events go to the target [`TARGET`] (`rsoa_server::job`), so a filter can choose them:
//! `--log-level info,rsoa_server::job=debug`.

use std::fmt;

use rsoa_protocol::{Map, Value};
use serde::{Deserialize, Serialize};

/// The `tracing` target of request and response events.
pub const TARGET: &str = "rsoa_server::job";

/// What a censored value is replaced with (PySOA's `CENSORED_STRING`).
pub const CENSORED: &str = "**********";

/// The keys whose values are censored: PySOA 1.4.9's `RecursivelyCensoredDictWrapper.SENSITIVE_FIELDS`, sorted.
pub const SENSITIVE_FIELDS: &[&str] = &[
    "account-number",
    "account-numbers",
    "accountNumber",
    "accountNumbers",
    "account_number",
    "account_numbers",
    "auth",
    "auth-token",
    "authToken",
    "auth_token",
    "authentication",
    "authentication-token",
    "authenticationToken",
    "authentication_token",
    "authorization",
    "authorization-token",
    "authorizationToken",
    "authorization_token",
    "bank-account",
    "bank-account-number",
    "bank-account-numbers",
    "bank-accounts",
    "bankAccount",
    "bankAccountNumber",
    "bankAccountNumbers",
    "bankAccounts",
    "bank_account",
    "bank_account_number",
    "bank_account_numbers",
    "bank_accounts",
    "card-id",
    "card-identification",
    "card-identification-code",
    "card-identification-codes",
    "card-identification-number",
    "card-identification-numbers",
    "card-identification-value",
    "card-identification-values",
    "card-identifications",
    "card-ids",
    "card-number",
    "card-numbers",
    "card-securities",
    "card-security",
    "card-security-code",
    "card-security-codes",
    "card-security-number",
    "card-security-numbers",
    "card-security-value",
    "card-security-values",
    "card-validation",
    "card-validation-code",
    "card-validation-codes",
    "card-validation-number",
    "card-validation-numbers",
    "card-validation-value",
    "card-validation-values",
    "card-validations",
    "card-verification",
    "card-verification-code",
    "card-verification-codes",
    "card-verification-number",
    "card-verification-numbers",
    "card-verification-value",
    "card-verification-values",
    "card-verifications",
    "cardId",
    "cardIdentification",
    "cardIdentificationCode",
    "cardIdentificationCodes",
    "cardIdentificationNumber",
    "cardIdentificationNumbers",
    "cardIdentificationValue",
    "cardIdentificationValues",
    "cardIdentifications",
    "cardIds",
    "cardNumber",
    "cardNumbers",
    "cardSecurities",
    "cardSecurity",
    "cardSecurityCode",
    "cardSecurityCodes",
    "cardSecurityNumber",
    "cardSecurityNumbers",
    "cardSecurityValue",
    "cardSecurityValues",
    "cardValidation",
    "cardValidationCode",
    "cardValidationCodes",
    "cardValidationNumber",
    "cardValidationNumbers",
    "cardValidationValue",
    "cardValidationValues",
    "cardValidations",
    "cardVerification",
    "cardVerificationCode",
    "cardVerificationCodes",
    "cardVerificationNumber",
    "cardVerificationNumbers",
    "cardVerificationValue",
    "cardVerificationValues",
    "cardVerifications",
    "card_id",
    "card_identification",
    "card_identification_code",
    "card_identification_codes",
    "card_identification_number",
    "card_identification_numbers",
    "card_identification_value",
    "card_identification_values",
    "card_identifications",
    "card_ids",
    "card_number",
    "card_numbers",
    "card_securities",
    "card_security",
    "card_security_code",
    "card_security_codes",
    "card_security_number",
    "card_security_numbers",
    "card_security_value",
    "card_security_values",
    "card_validation",
    "card_validation_code",
    "card_validation_codes",
    "card_validation_number",
    "card_validation_numbers",
    "card_validation_value",
    "card_validation_values",
    "card_validations",
    "card_verification",
    "card_verification_code",
    "card_verification_codes",
    "card_verification_number",
    "card_verification_numbers",
    "card_verification_value",
    "card_verification_values",
    "card_verifications",
    "cc-number",
    "cc-numbers",
    "ccNumber",
    "ccNumbers",
    "cc_number",
    "cc_numbers",
    "ccn",
    "ccns",
    "cid",
    "cids",
    "credit-card",
    "credit-card-number",
    "credit-card-numbers",
    "credit-cards",
    "creditCard",
    "creditCardNumber",
    "creditCardNumbers",
    "creditCards",
    "credit_card",
    "credit_card_number",
    "credit_card_numbers",
    "credit_cards",
    "csc",
    "cscs",
    "csn",
    "csns",
    "cvc",
    "cvc2",
    "cvc2s",
    "cvcs",
    "cvd",
    "cvds",
    "cve",
    "cves",
    "cvn2",
    "cvn2s",
    "cvv",
    "cvv2",
    "cvv2s",
    "cvvs",
    "icvv",
    "icvvs",
    "pass",
    "pass-phrase",
    "pass-phrases",
    "passPhrase",
    "passPhrases",
    "pass_phrase",
    "pass_phrases",
    "passphrase",
    "passphrases",
    "passwd",
    "passwds",
    "password",
    "passwords",
    "personal-id-number",
    "personal-id-numbers",
    "personal-identification-number",
    "personal-identification-numbers",
    "personalIdNumber",
    "personalIdNumbers",
    "personalIdentificationNumber",
    "personalIdentificationNumbers",
    "personal_id_number",
    "personal_id_numbers",
    "personal_identification_number",
    "personal_identification_numbers",
    "pin",
    "pin-code",
    "pin-codes",
    "pin-number",
    "pin-numbers",
    "pinCode",
    "pinCodes",
    "pinNumber",
    "pinNumbers",
    "pin_code",
    "pin_codes",
    "pin_number",
    "pin_numbers",
    "pins",
    "private",
    "private-key",
    "private-keys",
    "privateKey",
    "privateKeys",
    "private_key",
    "private_keys",
    "privates",
    "secret",
    "secret-key",
    "secret-keys",
    "secretKey",
    "secretKeys",
    "secret_key",
    "secret_keys",
    "secrets",
    "security-code",
    "security-codes",
    "securityCode",
    "securityCodes",
    "security_code",
    "security_codes",
    "token",
];

/// A logging level, by PySOA's (Python's) names.
///
/// ```
/// use rsoa_server::LogLevel;
///
/// let level: LogLevel = serde_json::from_str(r#""WARNING""#).unwrap();
/// assert_eq!(level, LogLevel::Warning);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum LogLevel {
    /// `DEBUG`.
    Debug,
    /// `INFO`.
    Info,
    /// `WARNING`.
    #[serde(alias = "WARN")]
    Warning,
    /// `ERROR`.
    Error,
    /// `CRITICAL` (an error event in `tracing`).
    Critical,
}

impl LogLevel {
    fn level(self) -> tracing::Level {
        match self {
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Warning => tracing::Level::WARN,
            LogLevel::Error | LogLevel::Critical => tracing::Level::ERROR,
        }
    }

    /// Whether an event at this level to [`TARGET`] would be recorded.
    pub(crate) fn enabled(self) -> bool {
        match self.level() {
            tracing::Level::DEBUG => tracing::enabled!(target: TARGET, tracing::Level::DEBUG),
            tracing::Level::INFO => tracing::enabled!(target: TARGET, tracing::Level::INFO),
            tracing::Level::WARN => tracing::enabled!(target: TARGET, tracing::Level::WARN),
            tracing::Level::ERROR => tracing::enabled!(target: TARGET, tracing::Level::ERROR),
            tracing::Level::TRACE => tracing::enabled!(target: TARGET, tracing::Level::TRACE),
        }
    }

    /// Logs `message` with a `request` or `response` field at this level.
    pub(crate) fn log(self, message: &str, field: &str, value: &dyn fmt::Display) {
        macro_rules! at {
            ($level:expr) => {
                if field == "request" {
                    tracing::event!(target: TARGET, $level, request = %value, "{message}")
                } else {
                    tracing::event!(target: TARGET, $level, response = %value, "{message}")
                }
            };
        }
        match self.level() {
            tracing::Level::DEBUG => at!(tracing::Level::DEBUG),
            tracing::Level::INFO => at!(tracing::Level::INFO),
            tracing::Level::WARN => at!(tracing::Level::WARN),
            tracing::Level::ERROR => at!(tracing::Level::ERROR),
            tracing::Level::TRACE => at!(tracing::Level::TRACE),
        }
    }
}

/// A value shown as JSON with its sensitive values censored, as PySOA's `RecursivelyCensoredDictWrapper` does:
/// under a sensitive key (PySOA's list, and the server's `extra_fields_to_redact`), a non-empty string or a
/// non-zero integer becomes [`CENSORED`], also inside lists under that key; maps are censored key by key at any
/// depth; booleans, floats, bytes and empty values are left as they are.
pub(crate) struct Censored<'a> {
    pub(crate) value: &'a Value,
    pub(crate) extra: &'a [String],
}

impl fmt::Display for Censored<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let censored = censor(self.value, false, self.extra);
        let json = serde_json::to_string(&censored).map_err(|_| fmt::Error)?;
        f.write_str(&json)
    }
}

/// Whether values under `key` are censored.
pub fn is_sensitive(key: &str, extra: &[String]) -> bool {
    SENSITIVE_FIELDS.binary_search(&key).is_ok() || extra.iter().any(|e| e == key)
}

/// A copy of `value` censored as PySOA censors logged messages: under a sensitive key ([`is_sensitive`]), a
/// non-empty string or a non-zero integer becomes [`CENSORED`], also inside lists under that key; maps are censored
/// key by key at any depth; booleans, floats, bytes and empty values stay. `sensitive` when `value` sits under a
/// sensitive key.
pub fn censor(value: &Value, sensitive: bool, extra: &[String]) -> Value {
    match value {
        Value::Map(map) => Value::Map(
            map.iter()
                .map(|(key, value)| {
                    let sensitive = key.as_str().is_some_and(|k| is_sensitive(k, extra));
                    (key.clone(), censor(value, sensitive, extra))
                })
                .collect::<Map>(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| censor(item, sensitive, extra))
                .collect(),
        ),
        Value::String(s) if sensitive && !s.is_empty() => Value::from(CENSORED),
        Value::NonUtf8String(s) if sensitive && !s.is_empty() => Value::from(CENSORED),
        Value::Int(i) if sensitive && i.as_f64() != 0.0 => Value::from(CENSORED),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(json: serde_json::Value) -> Value {
        serde_json::from_value(json).expect("a value")
    }

    /// PySOA's own `test_simple_dict` and `test_complex_dict` (sets and tuples are arrays here).
    #[test]
    fn censors_as_pysoa_does() {
        let simple = value(serde_json::json!({
            "hello": "world", "password": "censor!", "credit_card": "1234567890123456",
            "passphrase": true, "cvv": 938,
        }));
        assert_eq!(
            censor(&simple, false, &[]),
            value(serde_json::json!({
                "hello": "world", "password": CENSORED, "credit_card": CENSORED,
                "passphrase": true, "cvv": CENSORED,
            }))
        );
        let complex = value(serde_json::json!({
            "a_list": ["a", true, 109.8277, {"username": "nick", "passphrase": "this should be censored"},
                       {"username": "allison", "passphrase": ""}],
            "a_tuple": ["c", true, 42, {"cc_number": "9876543210987654", "cvv": "987", "expiration": "12-20",
                                        "pin": "4096"}],
            "passwords": ["Make It Censored", null, "", "Hello, World!"],
            "credit_card_numbers": ["1234", "5678", "9012"],
            "pin": ["c", "d", "", 0, 7, 1.5],
            "foo": "bar",
            "passphrases": {"not_sensitive": "not censored", "bankAccount": "this should also be censored"},
        }));
        assert_eq!(
            censor(&complex, false, &[]),
            value(serde_json::json!({
                "a_list": ["a", true, 109.8277, {"username": "nick", "passphrase": CENSORED},
                           {"username": "allison", "passphrase": ""}],
                "a_tuple": ["c", true, 42, {"cc_number": CENSORED, "cvv": CENSORED, "expiration": "12-20",
                                            "pin": CENSORED}],
                "passwords": [CENSORED, null, "", CENSORED],
                "credit_card_numbers": [CENSORED, CENSORED, CENSORED],
                "pin": [CENSORED, CENSORED, "", 0, CENSORED, 1.5],
                "foo": "bar",
                "passphrases": {"not_sensitive": "not censored", "bankAccount": CENSORED},
            }))
        );
    }

    #[test]
    fn extra_fields_are_censored_too() {
        let extra = ["ssn".to_owned()];
        let shown = Censored {
            value: &value(serde_json::json!({"ssn": "123-45-6789", "name": "Ann"})),
            extra: &extra,
        };
        assert_eq!(shown.to_string(), r#"{"ssn":"**********","name":"Ann"}"#);
    }

    #[test]
    fn the_list_is_sorted_for_binary_search() {
        assert!(SENSITIVE_FIELDS.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(SENSITIVE_FIELDS.len(), 242);
    }
}
