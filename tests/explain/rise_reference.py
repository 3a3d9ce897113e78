"""Literal ports of eclique/RISE (github.com/eclique/RISE: explanations.py class RISE, evaluation.py
CausalMetric), kept as close to the authors' code as a CPU run allows. Two changes, both needed to
feed the same random numbers to both implementations: the grid and the shifts are arguments instead of
np.random draws, and `.cuda()` is gone. The authors' unstable argsort is made stable (ties are then
ordered deterministically; the tests use tie-free maps)."""
import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from skimage.transform import resize
from torch import nn


class RISEReference(nn.Module):
    def __init__(self, model, input_size, gpu_batch=100):
        super().__init__()
        self.model = model
        self.input_size = input_size
        self.gpu_batch = gpu_batch

    def generate_masks(self, N, s, p1, grid, shifts):
        cell_size = np.ceil(np.array(self.input_size) / s)
        up_size = (s + 1) * cell_size

        grid = grid.astype("float32")  # was: np.random.rand(N, s, s) < p1

        self.masks = np.empty((N, *self.input_size))

        for i in range(N):
            # Random shifts
            x = int(shifts[i, 0])  # was: np.random.randint(0, cell_size[0])
            y = int(shifts[i, 1])  # was: np.random.randint(0, cell_size[1])
            # Linear upsampling and cropping
            self.masks[i, :, :] = resize(grid[i], up_size, order=1, mode="reflect", anti_aliasing=False)[
                x : x + self.input_size[0], y : y + self.input_size[1]
            ]
        self.masks = self.masks.reshape(-1, 1, *self.input_size)
        self.masks = torch.from_numpy(self.masks).float()
        self.N = N
        self.p1 = p1

    def forward(self, x):
        N = self.N
        _, _, H, W = x.size()
        # Apply array of filters to the image
        stack = torch.mul(self.masks, x.data)

        # p = nn.Softmax(dim=1)(model(stack)) processed in batches
        p = []
        for i in range(0, N, self.gpu_batch):
            p.append(self.model(stack[i : min(i + self.gpu_batch, N)]))
        p = torch.cat(p)
        # Number of classes
        CL = p.size(1)
        sal = torch.matmul(p.data.transpose(0, 1), self.masks.view(N, H * W))
        sal = sal.view((CL, H, W))
        sal = sal / N / self.p1
        return sal


def gkern(klen, nsig):
    """Returns a Gaussian kernel array.
    Convolution with it results in image blurring."""
    # create nxn zeros
    inp = np.zeros((klen, klen))
    # set element at the middle to one, a dirac delta
    inp[klen // 2, klen // 2] = 1
    # gaussian-smooth the dirac, resulting in a gaussian filter mask
    k = gaussian_filter(inp, nsig)
    kern = np.zeros((3, 3, klen, klen))
    kern[0, 0] = k
    kern[1, 1] = k
    kern[2, 2] = k
    return torch.from_numpy(kern.astype("float32"))


def auc(arr):
    """Returns normalized Area Under Curve of the array."""
    return (arr.sum() - arr[0] / 2 - arr[-1] / 2) / (arr.shape[0] - 1)


class CausalMetric:
    def __init__(self, model, mode, step, substrate_fn, HW):
        assert mode in ["del", "ins"]
        self.model = model
        self.mode = mode
        self.step = step
        self.substrate_fn = substrate_fn
        self.HW = HW

    def single_run(self, img_tensor, explanation):
        HW = self.HW
        with torch.no_grad():
            pred = self.model(img_tensor)
        top, c = torch.max(pred, 1)
        c = c.cpu().numpy()[0]
        n_steps = (HW + self.step - 1) // self.step

        if self.mode == "del":
            start = img_tensor.clone()
            finish = self.substrate_fn(img_tensor)
        elif self.mode == "ins":
            start = self.substrate_fn(img_tensor)
            finish = img_tensor.clone()

        scores = np.empty(n_steps + 1)
        # Coordinates of pixels in order of decreasing saliency
        salient_order = np.flip(np.argsort(explanation.reshape(-1, HW), axis=1, kind="stable"), axis=-1)
        for i in range(n_steps + 1):
            with torch.no_grad():
                pred = self.model(start)
            scores[i] = pred[0, c]
            if i < n_steps:
                coords = salient_order[:, self.step * i : self.step * (i + 1)]
                start.cpu().numpy().reshape(1, 3, HW)[0, :, coords] = finish.cpu().numpy().reshape(1, 3, HW)[0, :, coords]
        return scores


def blur_substrate(klen=11, ksig=5):
    kern = gkern(klen, ksig)
    return lambda x: nn.functional.conv2d(x, kern, padding=klen // 2)
