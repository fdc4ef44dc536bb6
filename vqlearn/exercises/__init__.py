"""The self-checks behind the book's exercises: a generic comparer (:mod:`vqlearn.exercises.core`) and one
checker per coding exercise, in one module per chapter (``chapter03.py`` holds chapter 3's).

A checker takes the reader's function, compares it with vqlearn's on random inputs, prints what agrees and
what differs, and raises :class:`ExerciseMismatch` on a difference.

Book: every chapter's "Exercises" section.
"""

from vqlearn.exercises.core import Comparison, ExerciseMismatch, check_function, compare

# One import line per chapter module, added by that chapter's author:
from vqlearn.exercises.chapter07 import check_group_norm
from vqlearn.exercises.chapter08 import check_multihead_attention
from vqlearn.exercises.chapter09 import check_downsample
from vqlearn.exercises.chaptera1 import check_overlap_map
from vqlearn.exercises.chapter10 import check_patch_window
from vqlearn.exercises.chapter11 import check_hinge_d_loss_margin, check_vanilla_d_loss
from vqlearn.exercises.chapter12 import check_feature_matching_loss, check_lpips_layer
from vqlearn.exercises.chapter01 import check_uint8_to_tensor
from vqlearn.exercises.chapter02 import check_kl_to_uniform
from vqlearn.exercises.chapter03 import check_straight_through
from vqlearn.exercises.chapter04 import check_perplexity, check_vq_loss
from vqlearn.exercises.chapter05 import check_psnr
from vqlearn.exercises.chapter06 import check_ema_update
from vqlearn.exercises.chapter13 import check_adaptive_weight_over
from vqlearn.exercises.chapter14 import check_high_frequency_energy
from vqlearn.exercises.chapter15 import check_causal_self_attention
from vqlearn.exercises.chapter16 import check_fsq_codes, check_rotation_gradient
