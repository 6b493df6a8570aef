//! Currency amounts (PySOA's `currint.Amount`).

use std::fmt;
use std::str::FromStr;

use crate::currencies::CURRENCIES;
use crate::magic::{self, Magic};
use crate::ValueError;

/// A currency that `currint` 2.0.0 (and therefore every PySOA peer) knows.
///
/// ```
/// use rsoa_protocol::Currency;
///
/// let usd: Currency = "usd".parse().unwrap();
/// assert_eq!(usd.code(), "USD");
/// assert_eq!(usd.exponent(), Some(2));
/// assert!("XXY".parse::<Currency>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(u8);

impl Currency {
    /// The three-letter upper-case ISO 4217 code.
    pub fn code(self) -> &'static str {
        CURRENCIES[usize::from(self.0)].0
    }

    /// How many decimal places the minor unit has (`None` for MGA and MRO, whose minor unit is a fifth).
    pub fn exponent(self) -> Option<u8> {
        CURRENCIES[usize::from(self.0)].1
    }

    /// Looks up a code given as bytes, ignoring ASCII case as `currint` does.
    pub fn from_code_bytes(code: &[u8]) -> Result<Currency, ValueError> {
        let found = match code {
            [a, b, c] => {
                let upper = [
                    a.to_ascii_uppercase(),
                    b.to_ascii_uppercase(),
                    c.to_ascii_uppercase(),
                ];
                CURRENCIES.binary_search_by(|(code, _)| code.as_bytes().cmp(&upper[..]))
            }
            _ => Err(0),
        };
        found.map(|i| Currency(i as u8)).map_err(|_| {
            ValueError::invalid(format!(
                "invalid currency code {:?}",
                String::from_utf8_lossy(code)
            ))
        })
    }
}

impl FromStr for Currency {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Currency, ValueError> {
        Currency::from_code_bytes(s.as_bytes())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount of money as an integer number of minor units (PySOA extension type 2).
///
/// ```
/// use rsoa_protocol::Amount;
///
/// let price = Amount::new("USD", 12345).unwrap();
/// assert_eq!(price.minor_units(), 12345);
/// assert_eq!(price.to_string(), "12345 USD");
/// assert_eq!("12345 USD".parse::<Amount>().unwrap(), price);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Amount {
    currency: Currency,
    minor_units: i64,
}

impl Amount {
    /// An amount in a currency given by its code.
    pub fn new(currency: &str, minor_units: i64) -> Result<Amount, ValueError> {
        Ok(Amount::from_currency(currency.parse()?, minor_units))
    }

    /// An amount in a known currency.
    pub fn from_currency(currency: Currency, minor_units: i64) -> Amount {
        Amount {
            currency,
            minor_units,
        }
    }

    /// The currency.
    pub fn currency(self) -> Currency {
        self.currency
    }

    /// The number of minor units (cents for USD).
    pub fn minor_units(self) -> i64 {
        self.minor_units
    }
}

impl fmt::Display for Amount {
    /// `<minor units> <code>`, the form [`FromStr`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.minor_units, self.currency)
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({self})")
    }
}

impl FromStr for Amount {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Amount, ValueError> {
        let (minor, code) = s.split_once(' ').ok_or_else(|| {
            ValueError::invalid(format!("{s:?} is not an amount like \"12345 USD\""))
        })?;
        let minor = minor.parse().map_err(|_| {
            ValueError::invalid(format!("{minor:?} is not a whole number of minor units"))
        })?;
        Amount::new(code, minor)
    }
}

impl Magic for Amount {
    const NAME: &'static str = magic::AMOUNT;
    const EXPECTING: &'static str = "a currency amount";
    type Repr = (String, i64);

    fn to_repr(&self) -> (String, i64) {
        (self.currency.code().to_owned(), self.minor_units)
    }

    fn from_repr((code, minor): (String, i64)) -> Result<Self, ValueError> {
        Amount::new(&code, minor)
    }
}

magic::serde_via_magic!(Amount);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_table_is_sorted_and_fits() {
        assert!(CURRENCIES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(CURRENCIES.len() <= 256);
        assert!(CURRENCIES
            .iter()
            .all(|(c, _)| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())));
    }

    #[test]
    fn lookup_matches_currint() {
        assert_eq!(Currency::from_code_bytes(b"usd").unwrap().code(), "USD");
        assert_eq!("MGA".parse::<Currency>().unwrap().exponent(), None);
        assert_eq!("BHD".parse::<Currency>().unwrap().exponent(), Some(3));
        for bad in [&b"XXY"[..], b"US\0", b"US", b"", b"USD ", b"USDX"] {
            assert!(Currency::from_code_bytes(bad).is_err(), "{bad:?}");
        }
    }
}
