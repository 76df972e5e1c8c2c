namespace Registry.Storage.Metadata;

/// <summary>
/// The whole metadata contract, so that a backend implements one thing: every concern below, each stated on its own
/// interface. Consumers depend on the narrow interface they need, never on this one (and never on a concrete
/// store). Every method is one transaction: after a crash at any instant the store holds either all of a change or
/// none of it. Implementations MUST be safe for concurrent use and MUST NOT see HTTP. SQLite
/// (<see cref="SqliteMetadataStore"/>) is the embedded one; <see cref="Postgres.PostgresMetadataStore"/> is the one
/// several replicas share. docs/storage.md, "Contracts", says which promise lives where.
/// </summary>
public interface IMetadataStore : ILinkStore, IManifestStore, IUploadStore, IEventOutbox, IVerificationStore,
    ISearchReadModel, ITagDetailsReadModel, IStorageUsage, IGarbageCollectionStore, IDeliveryCursors,
    IDistributionImportStore;
