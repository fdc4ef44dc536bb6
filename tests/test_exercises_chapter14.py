"""Chapter 14's self-check (exercise 14.1, the high-frequency energy from the DFT): it passes a correct function
and reports the usual mistakes with the right message."""

import pytest
import torch

from vqlearn.exercises import ExerciseMismatch, check_high_frequency_energy


def power_and_radius(images):
    height, width = images.shape[-2:]
    power = torch.fft.fft2(images.double()).abs() ** 2 / (height * width) ** 2
    fy = torch.fft.fftfreq(height, dtype=torch.float64)
    fx = torch.fft.fftfreq(width, dtype=torch.float64)
    return power, torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)


def my_high_frequency_energy(images, cutoff=0.25):  # the chapter's solution
    power, radius = power_and_radius(images)
    return (power * (radius > cutoff)).sum(dim=(1, 2, 3))


def test_solution_passes(capsys):
    comparisons = check_high_frequency_energy(my_high_frequency_energy)
    assert [c.status for c in comparisons] in (["exact"], ["close"])
    out = capsys.readouterr().out
    assert 'Exercise 14.1 (chapter "Training a VQ-GAN"): 4 random trials' in out
    assert "✓ my_high_frequency_energy agrees with vqlearn.spectral.high_frequency_energy" in out


def test_normalised_once_instead_of_twice_differs():
    def per_bin_only(images, cutoff=0.25):
        height, width = images.shape[-2:]
        return my_high_frequency_energy(images, cutoff) * height * width

    with pytest.raises(ExerciseMismatch) as error:
        check_high_frequency_energy(per_bin_only)
    message = str(error.value)
    assert "output                 DIFFERS" in message and "2 of 2 entries outside" in message and "(trial 0)" in message


def test_bins_on_the_cutoff_are_not_above_it():
    def at_or_above(images, cutoff=0.25):
        power, radius = power_and_radius(images)
        return (power * (radius >= cutoff)).sum(dim=(1, 2, 3))

    with pytest.raises(ExerciseMismatch) as error:
        check_high_frequency_energy(at_or_above)
    assert "output                 DIFFERS" in str(error.value) and "(trial 0)" in str(error.value)


def test_frequencies_without_the_negative_half_differ():
    def no_negative_frequencies(images, cutoff=0.25):
        height, width = images.shape[-2:]
        power, _ = power_and_radius(images)
        fy = torch.arange(height, dtype=torch.float64) / height
        fx = torch.arange(width, dtype=torch.float64) / width
        return (power * (torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2) > cutoff)).sum(dim=(1, 2, 3))

    with pytest.raises(ExerciseMismatch) as error:
        check_high_frequency_energy(no_negative_frequencies)
    assert "output                 DIFFERS" in str(error.value)


def test_mean_over_channels_is_caught_on_colour_images():
    def channel_mean(images, cutoff=0.25):
        return my_high_frequency_energy(images, cutoff) / images.shape[1]

    with pytest.raises(ExerciseMismatch) as error:
        check_high_frequency_energy(channel_mean)
    message = str(error.value)
    assert "output                 DIFFERS" in message and "(trial 0)" in message  # trial 0 has 3 channels


def test_kept_dimension_reports_both_shapes():
    def keepdim(images, cutoff=0.25):
        return my_high_frequency_energy(images, cutoff)[:, None]

    with pytest.raises(ExerciseMismatch) as error:
        check_high_frequency_energy(keepdim)
    assert "output                 SHAPE      got shape (2, 1), expected (2,) (trial 0)" in str(error.value)
