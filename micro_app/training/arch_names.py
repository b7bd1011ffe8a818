"""The names of the model architectures, in one place and importable without OpenCV or
TensorFlow, so that ``micro-app --help`` can list them while staying fast. The builders
live in ``micro_app.training.architectures``: a table per family, a module per network."""

# thesis and paper networks first, then the transfer models, then the live network
ARCH_NAMES = (
    "basic_cnn",
    "snet",
    "alexnet",
    "small_cnn",
    "drnn",
    "vgg16",
    "inception_v3",
    "resnet50",
    "resnet101",
    "inception_resnet_v2",
    "efficientnet_b0",
    "mobilenet_v2",
    "inception_v3_resnet101",
    "efficientnet_b0_attention",
    "efficientnet_lite0",
    "efficientnet_lite1",
    "efficientnet_lite2",
    "live_cnn",
)
