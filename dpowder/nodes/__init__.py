"""Every node, one per module, named after the node."""

from .batch_provider import BatchProvider
from .batch_filter import BatchFilter

# -- sources ------------------------------------------------------------------
from .array_source import ArraySource
from .gp_sources import GPArraySource, GPGraphSource

# -- provider combination -----------------------------------------------------
from .merge_provider import MergeProvider

# -- location and array manipulation ------------------------------------------
from .crop import Crop
from .pad import Pad
from .squeeze import Squeeze
from .unsqueeze import Unsqueeze
from .stack import Stack

# -- image processing ----------------------------------------------------------
from .normalize import Normalize
from .intensity_scale_shift import IntensityScaleShift

# -- io (issue 3) ----------------------------------------------------------------
from .zarr_source import ZarrSource
from .zarr_write import ZarrWrite
from .hdf5_source import Hdf5Source
from .hdf5_write import Hdf5Write
from .xarray_source import XarraySource
from .snapshot import Snapshot
from .klb_source import KlbSource
from .csv_points_source import CsvPointsSource
from .graph_source import GraphSource
from .dvid_source import DvidSource

# -- augmentation and random locations (issue 4) ----------------------------------
from .deform_augment import DeformAugment
from .defect_augment import DefectAugment
from .random_location import RandomLocation
from .reject import Reject
from .specified_location import SpecifiedLocation
from .iterate_locations import IterateLocations
from .random_provider import RandomProvider
from .simple_augment import SimpleAugment
from .intensity_augment import IntensityAugment
from .noise_augment import NoiseAugment

# -- label, graph and image processing (issue 5) ----------------------------------
from .downsample import DownSample
from .upsample import UpSample
from .add_affinities import AddAffinities
from .balance_labels import BalanceLabels
from .exclude_labels import ExcludeLabels
from .grow_boundary import GrowBoundary
from .renumber_connected_components import RenumberConnectedComponents
from .rasterize_graph import RasterizeGraph, RasterizationSettings
from .resample import Resample
from .astype import AsType

# -- blockwise (issue 6) -----------------------------------------------------------
from .scan import Scan, ScanCallback
from .daisy_request_blocks import DaisyRequestBlocks

# -- training, performance (issue 7) ------------------------------------------------
from .precache import PreCache
from .print_profiling_stats import PrintProfilingStats
from .generic_train import GenericTrain
from .generic_predict import GenericPredict

# -- compatibility (issue 8) ---------------------------------------------------------
from .elastic_augment import ElasticAugment
from .shift_augment import ShiftAugment
