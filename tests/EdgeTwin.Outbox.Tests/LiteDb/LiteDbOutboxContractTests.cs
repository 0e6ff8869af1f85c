using EdgeTwin.Outbox.Tests.Contract;

namespace EdgeTwin.Outbox.Tests.LiteDb;

public sealed class LiteDbOutboxContractTests : DurableOutboxContractTests
{
    private readonly TempDirectory _dir = new();

    private string DbPath => _dir.File("outbox.db");

    protected override async ValueTask<IOutbox> CreateOutboxAsync() =>
        await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = DbPath }, cancellationToken: Ct);

    protected override async ValueTask<IOutbox?> ReopenOutboxAsync(IOutbox outbox)
    {
        await outbox.DisposeAsync();
        return await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = DbPath }, cancellationToken: Ct);
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        _dir.Dispose();
    }
}
