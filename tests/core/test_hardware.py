"""The setup wizard's indexing estimate: which speed it rests on before and after the model is installed."""

from __future__ import annotations

from pathlib import Path

from desktop_search.core import hardware


def _folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(5):
        (docs / f"note{i}.txt").write_text("The quarterly report on library funding. " * 2000, "utf-8")
    return docs


def test_a_machine_with_a_gpu_is_not_estimated_at_cpu_speed_before_the_model_is_installed(tmp_path):
    docs = _folder(tmp_path)
    cpu_guess = hardware.estimate([docs], None, cpu_cores=4)
    gpu_guess = hardware.estimate([docs], None, cpu_cores=4, gpu_name="NVIDIA GeForce RTX 4060 Laptop GPU")
    assert cpu_guess.tokens == gpu_guess.tokens > 0
    assert cpu_guess.tokens_per_s == hardware.FALLBACK_TOKENS_PER_S_PER_CORE * 4
    assert gpu_guess.tokens_per_s == hardware.GPU_REFERENCE_TOKENS_PER_S
    assert gpu_guess.seconds < cpu_guess.seconds / 100
    # The user is told what the GPU figure is and that theirs may well be slower.
    text = gpu_guess.describe()
    assert hardware.GPU_REFERENCE_CARD in text and "rough guess" in text and "measured on yours" in text
    assert hardware.GPU_REFERENCE_CARD not in cpu_guess.describe()


def test_a_speed_measured_on_this_machine_wins_over_any_reference(tmp_path):
    docs = _folder(tmp_path)
    est = hardware.estimate([docs], 2500.0, cpu_cores=4, gpu_name="NVIDIA H100 80GB HBM3")
    assert est.measured and est.tokens_per_s == 2500.0 and est.reference_card is None
    assert "measured on this machine" in est.describe()
    assert abs(est.seconds - est.tokens / 2500.0) < 1e-6
