// simulate.cpp -- the simulator of examples/embed/c/simulate.c in C++: the
// same data, the same coarse gradient descent, the same printed lines (so
// tests/test_embed.py checks both against the Python API with one parser).
//
// Usage: simulate_cpp KEY0 KEY1 [STEPS]
//
// Build (examples/embed/README.md):
//   c++ -std=c++17 simulate.cpp $(pkg-config --cflags --libs stefast) -o simulate_cpp
#include <array>
#include <cstdint>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include <stefast/stefast.h>  // extern "C" inside

namespace {

constexpr std::int64_t M = 4, N = 6, B = 32;
// a power of two, as B is: the update rounds once, fused or not
constexpr double kLearningRate = 0.25;
constexpr int kThreads = 2;  // the results never depend on it

void check(stefast_status status, const char *what)
{
    if (status != STEFAST_OK)
        throw std::runtime_error(std::string(what) + ": " + stefast_strerror(status));
}

template <class Values>
void print_vector(const char *name, const Values &x)
{
    std::cout << name;
    for (double value : x) std::cout << ' ' << value;
    std::cout << '\n';
}

// A teacher, a student and a fixed training set drawn from stefast's
// generator: streams 0 .. B-1 are the samples, stream B the weights.
class Simulator {
public:
    explicit Simulator(const std::array<std::uint64_t, 2> &key)
        : Z_(B * M * N), weights_(2 * M + 2 * N)
    {
        check(stefast_normals_d(key.data(), 0, B, M * N, Z_.data(), kThreads), "normals (Z)");
        check(stefast_normals_d(key.data(), B, 1, 2 * M + 2 * N, weights_.data(), kThreads),
              "normals (weights)");
        v_.assign(weights_.begin() + M + N, weights_.begin() + 2 * M + N);
        w_.assign(weights_.begin() + 2 * M + N, weights_.end());
    }

    // one full-batch step; returns the mean loss before it
    double step()
    {
        double loss_sum;
        std::array<double, M> grad_v_sum;
        std::array<double, N> grad_w_sum;
        check(stefast_loss_and_grads_sum_d(Z_.data(), v_.data(), w_.data(), v_star(), w_star(),
                                           B, M, N, STEFAST_STE_RELU, &loss_sum,
                                           grad_v_sum.data(), grad_w_sum.data(), kThreads),
              "loss_and_grads_sum");
        for (std::int64_t i = 0; i < M; i++) v_[i] -= kLearningRate * (grad_v_sum[i] / B);
        for (std::int64_t j = 0; j < N; j++) w_[j] -= kLearningRate * (grad_w_sum[j] / B);
        return loss_sum / B;
    }

    const std::vector<double> &weights() const { return weights_; }
    std::vector<double> first_sample() const { return {Z_.begin(), Z_.begin() + M * N}; }
    const std::vector<double> &v() const { return v_; }
    const std::vector<double> &w() const { return w_; }

private:
    const double *v_star() const { return weights_.data(); }
    const double *w_star() const { return weights_.data() + M; }

    std::vector<double> Z_, weights_, v_, w_;
};

}  // namespace

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        std::cerr << "usage: " << argv[0] << " KEY0 KEY1 [STEPS]\n";
        return 2;
    }
    const std::array<std::uint64_t, 2> key = {std::strtoull(argv[1], nullptr, 10),
                                              std::strtoull(argv[2], nullptr, 10)};
    const int steps = argc == 4 ? std::atoi(argv[3]) : 10;
    try {
        Simulator sim(key);
        std::cout << std::setprecision(17);  // %.17g: every double round-trips
        std::cout << "stefast " << stefast_version() << '\n';
        print_vector("weights", sim.weights());
        print_vector("Z0", sim.first_sample());
        for (int t = 0; t < steps; t++) {
            const double loss = sim.step();
            std::cout << "step " << t << " loss " << loss << '\n';
        }
        print_vector("v", sim.v());
        print_vector("w", sim.w());
    } catch (const std::exception &e) {
        std::cerr << "simulate_cpp: " << e.what() << '\n';
        return 1;
    }
    return 0;
}
