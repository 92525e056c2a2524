//! Distributions against closed-form values: log-probabilities, entropies, modes, their
//! gradients, and the statistics and reproducibility of seeded sampling.

use candle_core::{Device, Tensor, Var};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rl_policy::{ActionDist, Categorical, DiagGaussian, PolicyError};

const LN_2PI: f64 = 1.837_877_066_409_345_5;

fn v1(t: &Tensor) -> Vec<f32> {
    t.to_vec1::<f32>().unwrap()
}

fn close(a: f32, b: f64, tol: f64, what: &str) {
    assert!((f64::from(a) - b).abs() <= tol, "{what}: {a} vs {b}");
}

#[test]
fn categorical_closed_form() {
    let dev = Device::Cpu;
    // Row 0: probabilities 1/6, 2/6, 3/6 (logits ln 1, ln 2, ln 3, shifted by 5).
    // Row 1: uniform over 3 (equal logits) - the mode must be the first action, like torch.
    let rows = [[5.0, 5.0 + 2f64.ln(), 5.0 + 3f64.ln()], [-1.0, -1.0, -1.0]];
    let logits = Tensor::new(&rows.map(|r| r.map(|x| x as f32)), &dev).unwrap();
    let c = Categorical::from_logits(&logits).unwrap();
    let p = c.probs().unwrap().to_vec2::<f32>().unwrap();
    for (i, &e) in [1.0 / 6.0, 2.0 / 6.0, 0.5].iter().enumerate() {
        close(p[0][i], e, 1e-7, "probs");
        close(p[1][i], 1.0 / 3.0, 1e-7, "uniform probs");
    }
    let lp = v1(&c.log_prob(&Tensor::new(&[2u32, 1], &dev).unwrap()).unwrap());
    close(lp[0], 0.5f64.ln(), 1e-6, "log_prob row 0");
    close(lp[1], (1.0f64 / 3.0).ln(), 1e-6, "log_prob row 1");
    // i64 and whole-number float actions are accepted too.
    let lp64 = v1(&c.log_prob(&Tensor::new(&[2i64, 1], &dev).unwrap()).unwrap());
    assert_eq!(lp, lp64);
    let lpf = v1(&c
        .log_prob(&Tensor::new(&[2f32, 1.0], &dev).unwrap())
        .unwrap());
    assert_eq!(lp, lpf);
    let h = v1(&c.entropy().unwrap());
    let h0: f64 = [1.0 / 6.0, 2.0 / 6.0, 0.5f64]
        .iter()
        .map(|p| -p * p.ln())
        .sum();
    close(h[0], h0, 1e-6, "entropy");
    close(h[1], 3f64.ln(), 1e-6, "uniform entropy");
    assert_eq!(c.mode().unwrap().to_vec1::<u32>().unwrap(), vec![2, 0]);
    assert_eq!(c.n(), 3);
    // Extreme logits stay finite (normalization subtracts the max).
    let big = Categorical::from_logits(&Tensor::new(&[[1000f32, 0.0]], &dev).unwrap()).unwrap();
    let lp = big.log_probs().unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(lp[0][0], 0.0);
    close(lp[0][1], -1000.0, 1e-3, "extreme log_prob");
    assert!(v1(&big.entropy().unwrap())[0].abs() < 1e-6);
}

#[test]
fn categorical_gradients() {
    let dev = Device::Cpu;
    let raw = [0.3f32, -1.2, 0.8, 0.1];
    let logits = Var::new(&[raw], &dev).unwrap();
    let c = Categorical::from_logits(logits.as_tensor()).unwrap();
    let a = 2usize;
    let grads = c
        .log_prob(&Tensor::new(&[a as u32], &dev).unwrap())
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let g = grads
        .get(logits.as_tensor())
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let z: f64 = raw.iter().map(|&x| f64::from(x).exp()).sum();
    let p: Vec<f64> = raw.iter().map(|&x| f64::from(x).exp() / z).collect();
    for j in 0..4 {
        // d log p_a / d logit_j = [j = a] - p_j
        close(
            g[0][j],
            f64::from(u8::from(j == a)) - p[j],
            1e-6,
            "d log_prob",
        );
    }
    let h: f64 = p.iter().map(|q| -q * q.ln()).sum();
    let grads = c.entropy().unwrap().sum_all().unwrap().backward().unwrap();
    let g = grads
        .get(logits.as_tensor())
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    for j in 0..4 {
        // dH / d logit_j = -p_j (log p_j + H)
        close(g[0][j], -p[j] * (p[j].ln() + h), 1e-6, "d entropy");
    }
}

#[test]
fn categorical_rejects_bad_input() {
    let dev = Device::Cpu;
    assert!(matches!(
        Categorical::from_logits(&Tensor::new(&[1f32, 2.0], &dev).unwrap()),
        Err(PolicyError::Shape { .. })
    ));
    let c = Categorical::from_logits(&Tensor::new(&[[0f32, 1.0]], &dev).unwrap()).unwrap();
    for bad in [
        Tensor::new(&[2u32], &dev).unwrap(),
        Tensor::new(&[u32::MAX], &dev).unwrap(),
        Tensor::new(&[-1i64], &dev).unwrap(),
        Tensor::new(&[0.5f32], &dev).unwrap(),
        Tensor::new(&[f32::NAN], &dev).unwrap(),
    ] {
        assert!(
            matches!(c.log_prob(&bad), Err(PolicyError::InvalidArgument(_))),
            "{bad}"
        );
    }
    assert!(matches!(
        c.log_prob(&Tensor::new(&[0u32, 1], &dev).unwrap()),
        Err(PolicyError::Shape { .. })
    ));
    let nan = Categorical::from_logits(&Tensor::new(&[[f32::NAN, 1.0]], &dev).unwrap()).unwrap();
    assert!(nan.sample(&mut StdRng::seed_from_u64(0)).is_err());
}

#[test]
fn categorical_sampling_frequencies_and_seeding() {
    let dev = Device::Cpu;
    let probs = [0.1f64, 0.2, 0.7];
    let logits = Tensor::new(&[probs.map(|p| p.ln() as f32)], &dev).unwrap();
    let big = logits
        .broadcast_as((20_000, 3))
        .unwrap()
        .contiguous()
        .unwrap();
    let c = Categorical::from_logits(&big).unwrap();
    let draws = c
        .sample(&mut StdRng::seed_from_u64(9))
        .unwrap()
        .to_vec1::<u32>()
        .unwrap();
    for (k, &p) in probs.iter().enumerate() {
        let freq = draws.iter().filter(|&&a| a as usize == k).count() as f64 / draws.len() as f64;
        // 5 standard errors at n = 20000.
        assert!(
            (freq - p).abs() < 5.0 * (p * (1.0 - p) / 20_000.0).sqrt(),
            "action {k}: {freq} vs {p}"
        );
    }
    let again = c
        .sample(&mut StdRng::seed_from_u64(9))
        .unwrap()
        .to_vec1::<u32>()
        .unwrap();
    assert_eq!(draws, again, "same seed, same samples");
    let other = c
        .sample(&mut StdRng::seed_from_u64(10))
        .unwrap()
        .to_vec1::<u32>()
        .unwrap();
    assert_ne!(draws, other);
    // A zero-probability action is never drawn.
    let masked = Categorical::from_logits(&Tensor::new(&[[0f32, -200.0]], &dev).unwrap()).unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    assert!((0..1000).all(|_| masked.sample(&mut rng).unwrap().to_vec1::<u32>().unwrap() == [0]));
}

#[test]
fn gaussian_closed_form_and_gradients() {
    let dev = Device::Cpu;
    let mean = Var::new(&[[0.5f32, -1.0], [2.0, 0.0]], &dev).unwrap();
    let log_std = Var::new(&[2f32.ln(), -0.5], &dev).unwrap();
    let g = DiagGaussian::new(mean.as_tensor().clone(), log_std.as_tensor().clone()).unwrap();
    let actions = Tensor::new(&[[1.0f32, -1.5], [2.0, 0.0]], &dev).unwrap();
    let ls = [2f64.ln(), -0.5];
    let mu = [[0.5, -1.0], [2.0, 0.0]];
    let a = [[1.0, -1.5], [2.0, 0.0]];
    let lp = v1(&g.log_prob(&actions).unwrap());
    for r in 0..2 {
        let expected: f64 = (0..2)
            .map(|i| {
                let s = ls[i].exp();
                -((a[r][i] - mu[r][i]) * (a[r][i] - mu[r][i])) / (2.0 * s * s)
                    - ls[i]
                    - 0.5 * LN_2PI
            })
            .sum();
        close(lp[r], expected, 1e-6, "gaussian log_prob");
    }
    let h = v1(&g.entropy().unwrap());
    let h_expected: f64 = ls.iter().map(|l| 0.5 + 0.5 * LN_2PI + l).sum();
    assert_eq!(h.len(), 2);
    h.iter()
        .for_each(|&x| close(x, h_expected, 1e-6, "gaussian entropy"));
    let std = g.std().unwrap().to_vec2::<f32>().unwrap();
    close(std[1][0], 2.0, 1e-6, "std");
    close(std[1][1], (-0.5f64).exp(), 1e-6, "std");
    assert_eq!(
        g.mode().unwrap().to_vec2::<f32>().unwrap(),
        vec![vec![0.5, -1.0], vec![2.0, 0.0]]
    );

    let grads = g
        .log_prob(&actions)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let gm = grads
        .get(mean.as_tensor())
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let gs = v1(grads.get(log_std.as_tensor()).unwrap());
    for i in 0..2 {
        let var = (2.0 * ls[i]).exp();
        let mut d_ls = 0.0;
        for r in 0..2 {
            let diff = a[r][i] - mu[r][i];
            close(gm[r][i], diff / var, 1e-5, "d log_prob / d mean");
            d_ls += diff * diff / var - 1.0;
        }
        close(gs[i], d_ls, 1e-5, "d log_prob / d log_std");
    }
    let grads = g.entropy().unwrap().sum_all().unwrap().backward().unwrap();
    // Each of the 2 rows contributes d/d log_std = 1.
    v1(grads.get(log_std.as_tensor()).unwrap())
        .iter()
        .for_each(|&x| close(x, 2.0, 1e-6, "d entropy"));
}

#[test]
fn gaussian_sampling_statistics_and_errors() {
    let dev = Device::Cpu;
    let n = 20_000;
    let mean = Tensor::new(&[[1.5f32, -2.0]], &dev)
        .unwrap()
        .broadcast_as((n, 2))
        .unwrap()
        .contiguous()
        .unwrap();
    let log_std = Tensor::new(&[0.0f32, 1.0], &dev).unwrap();
    let g = DiagGaussian::new(mean, log_std).unwrap();
    let s = g
        .sample(&mut StdRng::seed_from_u64(4))
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    for (i, (m, sd)) in [(1.5f64, 1.0f64), (-2.0, 1f64.exp())].iter().enumerate() {
        let xs: Vec<f64> = s.iter().map(|r| f64::from(r[i])).collect();
        let avg = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - avg) * (x - avg)).sum::<f64>() / (n - 1) as f64;
        assert!(
            (avg - m).abs() < 5.0 * sd / (n as f64).sqrt(),
            "dim {i} mean {avg}"
        );
        assert!(
            (var.sqrt() / sd - 1.0).abs() < 0.03,
            "dim {i} std {}",
            var.sqrt()
        );
    }
    let again = g
        .sample(&mut StdRng::seed_from_u64(4))
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    assert_eq!(s, again);

    // rsample is differentiable (d/d mean = 1, d/d log_std = std * eps); sample is detached.
    let mu = Var::new(&[[0.5f32, 0.5]], &dev).unwrap();
    let lsd = Var::new(&[0.0f32, 0.3], &dev).unwrap();
    let g2 = DiagGaussian::new(mu.as_tensor().clone(), lsd.as_tensor().clone()).unwrap();
    let r = g2.rsample(&mut StdRng::seed_from_u64(8)).unwrap();
    let s = g2.sample(&mut StdRng::seed_from_u64(8)).unwrap();
    assert_eq!(
        r.to_vec2::<f32>().unwrap(),
        s.to_vec2::<f32>().unwrap(),
        "same draws"
    );
    let grads = r.sum_all().unwrap().backward().unwrap();
    assert_eq!(
        grads.get(mu.as_tensor()).unwrap().to_vec2::<f32>().unwrap(),
        vec![vec![1.0, 1.0]]
    );
    let d_ls = v1(grads.get(lsd.as_tensor()).unwrap());
    let rv = r.to_vec2::<f32>().unwrap();
    for i in 0..2 {
        close(
            d_ls[i],
            f64::from(rv[0][i] - 0.5),
            1e-6,
            "d rsample / d log_std",
        );
    }
    let grads = s.sum_all().unwrap().backward().unwrap();
    assert!(grads.get(mu.as_tensor()).is_none());

    let bad_ls = DiagGaussian::new(
        Tensor::zeros((3, 2), candle_core::DType::F32, &dev).unwrap(),
        Tensor::zeros(3, candle_core::DType::F32, &dev).unwrap(),
    );
    assert!(matches!(bad_ls, Err(PolicyError::Shape { .. })));
    assert!(matches!(
        g.log_prob(&Tensor::zeros((n, 3), candle_core::DType::F32, &dev).unwrap()),
        Err(PolicyError::Shape { .. })
    ));
}

#[test]
fn action_dist_dispatches() {
    let dev = Device::Cpu;
    let d = ActionDist::Categorical(
        Categorical::from_logits(&Tensor::new(&[[0f32, 3.0]], &dev).unwrap()).unwrap(),
    );
    let mut rng = StdRng::seed_from_u64(0);
    assert_eq!(
        d.act(true, &mut rng).unwrap().to_vec1::<u32>().unwrap(),
        vec![1]
    );
    assert_eq!(d.mode().unwrap().to_vec1::<u32>().unwrap(), vec![1]);
    assert_eq!(d.entropy().unwrap().dims(), &[1]);
    assert_eq!(
        d.log_prob(&Tensor::new(&[1u32], &dev).unwrap())
            .unwrap()
            .dims(),
        &[1]
    );
    assert!(d.device().is_cpu());
    let g = ActionDist::DiagGaussian(
        DiagGaussian::new(
            Tensor::new(&[[0.25f32]], &dev).unwrap(),
            Tensor::new(&[-20f32], &dev).unwrap(),
        )
        .unwrap(),
    );
    assert_eq!(
        g.act(true, &mut rng).unwrap().to_vec2::<f32>().unwrap(),
        vec![vec![0.25]]
    );
    let s = g.act(false, &mut rng).unwrap().to_vec2::<f32>().unwrap();
    assert!((s[0][0] - 0.25).abs() < 1e-6, "std e^-20 sample {s:?}");
}
