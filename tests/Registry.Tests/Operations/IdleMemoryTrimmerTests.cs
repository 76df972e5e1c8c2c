using Registry.Api.Observability;

namespace Registry.Tests.Operations;

/// <summary>When the registry gives memory back: only when idle, and only after the heap grew.</summary>
public class IdleMemoryTrimmerTests
{
    private const long MiB = 1 << 20;

    [Fact]
    public void An_idle_registry_whose_heap_grew_since_the_last_trim_collects()
    {
        IdleMemoryTrimmer.ShouldTrim(allocatedSinceLastLook: 1 * MiB, committed: 120 * MiB, committedAfterLastTrim: 40 * MiB)
            .Should().BeTrue();
    }

    [Fact]
    public void A_registry_still_allocating_does_not_collect()
    {
        IdleMemoryTrimmer.ShouldTrim(allocatedSinceLastLook: 200 * MiB, committed: 120 * MiB, committedAfterLastTrim: 40 * MiB)
            .Should().BeFalse();
    }

    [Fact]
    public void An_idle_registry_whose_heap_did_not_grow_does_not_collect_again()
    {
        IdleMemoryTrimmer.ShouldTrim(allocatedSinceLastLook: 0, committed: 44 * MiB, committedAfterLastTrim: 40 * MiB)
            .Should().BeFalse();
    }
}
