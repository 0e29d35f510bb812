//! The browser's proof of possession: a compact JWS of type `dbsc+jwt`,
//! parsed strictly and verified with ES256 (RustCrypto `p256`) or RS256
//! (the `rsa` crate's PKCS#1 v1.5 signature *verification*, which handles
//! no secret).

use p256::ecdsa::signature::Verifier as _;
use serde::Deserialize;

use super::header::MAX_VALUE_LEN;
use super::DeviceAlgorithm;
use crate::b64;
use crate::session::DeviceKey;

/// Why a proof was refused; for the logs only (the client is told
/// nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProofError(pub(crate) &'static str);

impl std::fmt::Display for ProofError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// A proof whose form was checked, its signature not yet.
#[derive(Debug)]
pub(crate) struct Proof {
    pub(crate) alg: DeviceAlgorithm,
    /// The key in the header (registration carries one; a refresh need
    /// not).
    pub(crate) jwk: Option<DeviceKey>,
    /// The challenge the proof answers.
    pub(crate) jti: String,
    signing_input_len: usize,
    signature: Vec<u8>,
}

#[derive(Deserialize)]
struct HeaderIn {
    alg: String,
    typ: Option<String>,
    #[serde(default)]
    jwk: Option<JwkIn>,
    /// Present means "extensions you must understand": none are.
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct JwkIn {
    kty: String,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    /// A private key member: a browser never sends one.
    #[serde(default)]
    d: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct PayloadIn {
    jti: String,
}

/// Reads a proof: three canonical base64url parts, a header of type
/// `dbsc+jwt` naming an algorithm of `allowed`, with a well-formed public
/// key when it carries one, and a payload with a `jti`.
pub(crate) fn parse(token: &str, allowed: &[DeviceAlgorithm]) -> Result<Proof, ProofError> {
    if token.len() > MAX_VALUE_LEN {
        return Err(ProofError("proof too long"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ProofError("proof is not three dot-separated parts"));
    };
    let decode = |part: &str, what| {
        if part.is_empty() {
            return Err(ProofError(what));
        }
        b64::decode(part).map_err(|_| ProofError(what))
    };
    let header_bytes = decode(header, "proof header is not canonical base64url")?;
    let payload_bytes = decode(payload, "proof payload is not canonical base64url")?;
    let signature = decode(signature, "proof signature is not canonical base64url")?;
    let head: HeaderIn = serde_json::from_slice(&header_bytes)
        .map_err(|_| ProofError("proof header is not a JSON object of the expected shape"))?;
    if head.crit.is_some() {
        return Err(ProofError("proof header has crit"));
    }
    if head.typ.as_deref() != Some("dbsc+jwt") {
        return Err(ProofError("proof typ is not dbsc+jwt"));
    }
    let Some(alg) = DeviceAlgorithm::from_name(&head.alg) else {
        return Err(ProofError("proof alg is not ES256 or RS256"));
    };
    if !allowed.contains(&alg) {
        return Err(ProofError("proof alg is not allowed here"));
    }
    let jwk = head.jwk.map(|jwk| device_key(jwk, alg)).transpose()?;
    let body: PayloadIn = serde_json::from_slice(&payload_bytes)
        .map_err(|_| ProofError("proof payload is not a JSON object with a jti string"))?;
    if body.jti.is_empty() || body.jti.len() > MAX_VALUE_LEN {
        return Err(ProofError("proof jti is empty or too long"));
    }
    Ok(Proof {
        alg,
        jwk,
        jti: body.jti,
        signing_input_len: header.len() + 1 + payload.len(),
        signature,
    })
}

/// The public key in a proof's header, checked against its algorithm.
fn device_key(jwk: JwkIn, alg: DeviceAlgorithm) -> Result<DeviceKey, ProofError> {
    if jwk.d.is_some() {
        return Err(ProofError("proof jwk carries a private key"));
    }
    let key = match (alg, jwk.kty.as_str()) {
        (DeviceAlgorithm::Es256, "EC") => {
            if jwk.crv.as_deref() != Some("P-256") || jwk.n.is_some() || jwk.e.is_some() {
                return Err(ProofError("proof jwk is not a P-256 key"));
            }
            let (Some(x), Some(y)) = (jwk.x, jwk.y) else {
                return Err(ProofError("proof jwk lacks x or y"));
            };
            DeviceKey::Ec {
                crv: "P-256".to_owned(),
                x,
                y,
            }
        }
        (DeviceAlgorithm::Rs256, "RSA") => {
            if jwk.crv.is_some() || jwk.x.is_some() || jwk.y.is_some() {
                return Err(ProofError("proof jwk is not an RSA key"));
            }
            let (Some(n), Some(e)) = (jwk.n, jwk.e) else {
                return Err(ProofError("proof jwk lacks n or e"));
            };
            DeviceKey::Rsa { n, e }
        }
        _ => return Err(ProofError("proof jwk type does not fit its alg")),
    };
    // Checked now, so that a key that cannot verify is never bound.
    Verifying::new(&key, alg)?;
    Ok(key)
}

impl Proof {
    /// Verifies the signature of `token` (the text this proof was parsed
    /// from) with `key`, which must fit the proof's algorithm.
    pub(crate) fn verify(&self, token: &str, key: &DeviceKey) -> Result<(), ProofError> {
        let input = token
            .as_bytes()
            .get(..self.signing_input_len)
            .ok_or(ProofError("proof changed"))?;
        Verifying::new(key, self.alg)?.verify(input, &self.signature)
    }
}

/// A public key ready to verify.
enum Verifying {
    Es256(p256::ecdsa::VerifyingKey),
    Rs256(rsa_verify::pkcs1v15::VerifyingKey<sha2::Sha256>),
}

/// RSA moduli accepted, in bits.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;

impl Verifying {
    fn new(key: &DeviceKey, alg: DeviceAlgorithm) -> Result<Verifying, ProofError> {
        match (key, alg) {
            (DeviceKey::Ec { crv, x, y }, DeviceAlgorithm::Es256) if crv == "P-256" => {
                let coordinate = |c: &str| {
                    b64::decode(c)
                        .ok()
                        .filter(|bytes| bytes.len() == 32)
                        .ok_or(ProofError("P-256 coordinate is not 32 bytes of base64url"))
                };
                let (x, y) = (coordinate(x)?, coordinate(y)?);
                let point = p256::EncodedPoint::from_affine_coordinates(
                    p256::FieldBytes::from_slice(&x),
                    p256::FieldBytes::from_slice(&y),
                    false,
                );
                p256::ecdsa::VerifyingKey::from_encoded_point(&point)
                    .map(Verifying::Es256)
                    .map_err(|_| ProofError("P-256 key is not a point on the curve"))
            }
            (DeviceKey::Rsa { n, e }, DeviceAlgorithm::Rs256) => {
                let n = b64::decode(n).map_err(|_| ProofError("RSA n is not base64url"))?;
                let e = b64::decode(e).map_err(|_| ProofError("RSA e is not base64url"))?;
                if n.first() == Some(&0) || e.first() == Some(&0) || e.len() > 4 {
                    return Err(ProofError("RSA n or e is not minimal, or e is too long"));
                }
                let n = rsa_verify::BigUint::from_bytes_be(&n);
                let e = rsa_verify::BigUint::from_bytes_be(&e);
                if !RSA_BITS.contains(&n.bits()) {
                    return Err(ProofError("RSA key is not of 2048 to 4096 bits"));
                }
                let key = rsa_verify::RsaPublicKey::new(n, e)
                    .map_err(|_| ProofError("RSA key is not valid"))?;
                Ok(Verifying::Rs256(rsa_verify::pkcs1v15::VerifyingKey::new(
                    key,
                )))
            }
            _ => Err(ProofError("bound key does not fit the proof's alg")),
        }
    }

    fn verify(&self, input: &[u8], signature: &[u8]) -> Result<(), ProofError> {
        let bad = || ProofError("proof signature does not verify");
        match self {
            Verifying::Es256(key) => {
                // JWS: r || s, 64 bytes, never DER.
                let signature = p256::ecdsa::Signature::from_slice(signature).map_err(|_| bad())?;
                key.verify(input, &signature).map_err(|_| bad())
            }
            Verifying::Rs256(key) => {
                let signature =
                    rsa_verify::pkcs1v15::Signature::try_from(signature).map_err(|_| bad())?;
                rsa_verify::signature::Verifier::verify(key, input, &signature).map_err(|_| bad())
            }
        }
    }
}
