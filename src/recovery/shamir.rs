//! Shamir secret sharing byte by byte over GF(2^8) with the AES polynomial: field arithmetic
//! without secret-dependent branches or table lookups, splitting with uniform coefficients,
//! and Lagrange interpolation.

use rand::{CryptoRng, RngCore};
use zeroize::Zeroizing;

/// The highest polynomial degree a split can need (threshold 16).
const MAX_DEGREE: usize = 15;

/// Multiplication in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1, in constant time.
pub fn mul(a: u8, b: u8) -> u8 {
    let (mut a, mut b, mut product) = (a, b, 0u8);
    for _ in 0..8 {
        product ^= a & 0u8.wrapping_sub(b & 1);
        let carry = 0u8.wrapping_sub(a >> 7);
        a = (a << 1) ^ (0x1b & carry);
        b >>= 1;
    }
    product
}

/// The multiplicative inverse, as a^254 (the exponent is fixed, so the time is too). The
/// inverse of 0 comes out as 0; callers never ask for it.
pub fn inv(a: u8) -> u8 {
    let mut result = 1u8;
    let mut power = a;
    let mut exponent = 254u8;
    while exponent > 0 {
        if exponent & 1 == 1 {
            result = mul(result, power);
        }
        power = mul(power, power);
        exponent >>= 1;
    }
    result
}

/// Splits `secret` into `count` shares of which any `threshold` rebuild it. Share `i`
/// (counting from 0) is the evaluation at x = i + 1. Every coefficient is drawn uniformly
/// from all 256 field elements, zero included. The caller checks
/// 2 <= threshold <= count <= 255.
pub fn split(
    secret: &[u8],
    threshold: u8,
    count: u8,
    rng: &mut (impl RngCore + CryptoRng),
) -> Vec<Zeroizing<Vec<u8>>> {
    let degree = usize::from(threshold.saturating_sub(1)).min(MAX_DEGREE);
    let mut shares: Vec<Zeroizing<Vec<u8>>> = (0..count)
        .map(|_| Zeroizing::new(vec![0u8; secret.len()]))
        .collect();
    let mut coefficients = Zeroizing::new([0u8; MAX_DEGREE]);
    for (j, &secret_byte) in secret.iter().enumerate() {
        rng.fill_bytes(&mut coefficients[..degree]);
        for (i, share) in shares.iter_mut().enumerate() {
            let x = (i + 1) as u8;
            // Horner's rule: ((a_d x + a_{d-1}) x + ...) x + s.
            let mut y = 0u8;
            for &coefficient in coefficients[..degree].iter().rev() {
                y = mul(y, x) ^ coefficient;
            }
            share[j] = mul(y, x) ^ secret_byte;
        }
    }
    shares
}

/// The value at `at` of the polynomials through `points` (x, y bytes), byte by byte. The x
/// values must be distinct and nonzero, and every y as long as the first.
pub fn interpolate(points: &[(u8, &[u8])], at: u8) -> Zeroizing<Vec<u8>> {
    let length = points.first().map_or(0, |(_, y)| y.len());
    let mut result = Zeroizing::new(vec![0u8; length]);
    for (i, &(x_i, y_i)) in points.iter().enumerate() {
        // The Lagrange basis polynomial of point i, evaluated at `at`.
        let mut basis = 1u8;
        for (m, &(x_m, _)) in points.iter().enumerate() {
            if m != i {
                basis = mul(basis, mul(at ^ x_m, inv(x_i ^ x_m)));
            }
        }
        for (out, &y) in result.iter_mut().zip(y_i) {
            *out ^= mul(basis, y);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn multiplication_matches_fips_197() {
        assert_eq!(mul(0x57, 0x83), 0xc1);
        assert_eq!(mul(0x57, 0x13), 0xfe);
        assert_eq!(mul(0, 0xff), 0);
        assert_eq!(mul(1, 0xab), 0xab);
    }

    #[test]
    fn every_nonzero_element_has_an_inverse() {
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1, "inverse of {a:#04x}");
        }
    }

    #[test]
    fn multiplication_is_commutative_and_distributive() {
        for a in 0..=255u8 {
            for b in [0u8, 1, 2, 3, 0x53, 0xca, 0xff] {
                assert_eq!(mul(a, b), mul(b, a));
                assert_eq!(mul(a, b ^ 0x1f), mul(a, b) ^ mul(a, 0x1f));
            }
        }
    }

    #[test]
    fn any_threshold_shares_rebuild_and_fewer_do_not() {
        let secret: Vec<u8> = (0..48).map(|i| (i * 37 + 11) as u8).collect();
        let shares = split(&secret, 3, 5, &mut OsRng);
        for a in 0..5 {
            for b in a + 1..5 {
                for c in b + 1..5 {
                    let points: Vec<(u8, &[u8])> = [a, b, c]
                        .iter()
                        .map(|&i| ((i + 1) as u8, shares[i].as_slice()))
                        .collect();
                    assert_eq!(interpolate(&points, 0).as_slice(), secret.as_slice());
                }
                // Two points define a line, not the degree-2 polynomials: the odds that all
                // 48 bytes still come out right are 2^-384.
                let pair = [
                    ((a + 1) as u8, shares[a].as_slice()),
                    ((b + 1) as u8, shares[b].as_slice()),
                ];
                assert_ne!(interpolate(&pair, 0).as_slice(), secret.as_slice());
            }
        }
    }

    #[test]
    fn interpolation_reproduces_the_other_shares() {
        let secret = [7u8; 48];
        let shares = split(&secret, 4, 7, &mut OsRng);
        let points: Vec<(u8, &[u8])> = (0..4)
            .map(|i| ((i + 1) as u8, shares[i].as_slice()))
            .collect();
        for (i, share) in shares.iter().enumerate().skip(4) {
            assert_eq!(
                interpolate(&points, (i + 1) as u8).as_slice(),
                share.as_slice()
            );
        }
    }

    /// With k = 2 a share byte is s + a·x with a uniform, so it equals s with probability
    /// 1/256. Coefficients drawn from 1..255 (RUSTSEC-2024-0398) would never give s at all.
    #[test]
    fn share_bytes_are_uniform_around_the_secret() {
        let secret = [0x5au8; 48];
        let splits = 2_000;
        let mut equal = 0u64;
        for _ in 0..splits {
            for share in split(&secret, 2, 3, &mut OsRng) {
                equal += share.iter().filter(|&&b| b == 0x5a).count() as u64;
            }
        }
        let trials = (splits * 3 * 48) as f64;
        let expected = trials / 256.0;
        let deviation = (trials * (1.0 / 256.0) * (255.0 / 256.0)).sqrt();
        let lowest = (expected - 6.0 * deviation) as u64;
        let highest = (expected + 6.0 * deviation) as u64;
        assert!(
            (lowest..=highest).contains(&equal),
            "{equal} share bytes equal the secret byte in {trials} (expected about {expected})"
        );
    }
}
